// The dashboard page's code (GET /dashboard): a file of its own, as the page's CSP allows no inline script.
"use strict";

document.getElementById("status").textContent = "Ready.";
