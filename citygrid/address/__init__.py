"""Addresses (一标三实): from free text to the standard address base and back.

- `normalize`: traditional → simplified, full-width → half-width, Chinese numerals → digits where they are
  numbers, 幢/号楼/座 → 栋, 户 → 室, separators and duplicated prefixes removed; keeps an index map back to the
  input so callers can report which input parts were not used.
- `parse`: the run-time CRF sequence labeller (python-crfsuite); the trained model ships in
  `models/address_crf.bin` (the corpora do not). `training`: the corpus readers and the training run.
- `base`: the standard address tree (road → door → compound → building → unit → floor → room, village groups)
  built from the registry, with permanent codes. `facts`: 三实 (houses, persons, organizations) at its nodes.
- `nodes`: one address node read (parents, children, 三实, masked) and its door-plate QR.
- `resolve`: the in-memory index and geocoder; `index`: its life cycle in a server process.
- `reverse`: point → nearest door plate, building, road and divisions.
- `batch`: CSV/Excel files geocoded as jobs.

The levels follow the public-security address element types (GA/T 2000.32) and the Hubei standard-address
coding rules (DB42/T 2175-2024); see the project's STANDARDS notes.
"""
