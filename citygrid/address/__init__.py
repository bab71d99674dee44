"""Addresses (DESIGN §5): normalize free-text Chinese addresses and parse them into levelled elements.

- `citygrid.address.normalize`: traditional → simplified, full-width → half-width, Chinese numerals → digits
  where they are numbers, 幢/号楼/座 → 栋, 户 → 室, separators and duplicated prefixes removed; keeps an index
  map back to the input so callers can report which input parts were not used.
- `citygrid.address.parse`: a CRF sequence labeller (python-crfsuite) trained on the shared CCKS2021 and NCAP
  address corpora; the trained model ships in `citygrid/address/models/address_crf.bin` (the corpora do not).
"""
