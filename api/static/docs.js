/* /docs: Swagger UI started from a static file (the CSP allows no inline script); settings as FastAPI's own page,
 * with the online validator off so the page makes no external requests. */
'use strict';

(() => {
  const el = document.getElementById('swagger-ui');
  if (!window.SwaggerUIBundle) return; // not installed: the page says so
  window.ui = window.SwaggerUIBundle({
    url: el.dataset.openapiUrl,
    dom_id: '#swagger-ui',
    layout: 'BaseLayout',
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    oauth2RedirectUrl: window.location.origin + el.dataset.oauth2RedirectUrl,
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
