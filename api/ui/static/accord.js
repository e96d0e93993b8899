// accord's own script: htmx sends each session's CSRF token with every request it makes.
// (The pages work without it: every form also carries the token as a hidden field.)
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content"); }
});
