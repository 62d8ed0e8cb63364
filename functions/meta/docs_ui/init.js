// Starts Swagger UI on the docs page (GET /v1/docs). A file of its own, not an inline script, so the
// page's Content-Security-Policy can allow scripts from this API only ('self').
"use strict";

const container = document.getElementById("ui");
window.SwaggerUIBundle({
  // The page names the document relative to itself: /v1/openapi.json, with or without a stage in front.
  url: container.dataset.specUrl,
  domNode: container,
  // The default validator badge is an image from validator.swagger.io: the page loads nothing from elsewhere.
  validatorUrl: null,
});
