// accord's own script: htmx sends each session's CSRF token with every request it makes.
// (The pages work without it: every form also carries the token as a hidden field.)
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content"); }
});

// A partial update that is refused (a filter that is not valid, a record no longer there,
// a session that ended) shows the whole page the server answered, as it would without
// JavaScript, rather than leaving the old content in place without a word.
document.addEventListener("htmx:responseError", function (event) {
  var xhr = event.detail.xhr;
  if (event.detail.requestConfig && event.detail.requestConfig.verb === "get" && xhr.responseURL) {
    window.location.assign(xhr.responseURL);
  }
});
