// The safeguarding alert inbox, live. The page works without this script (its refresh
// link reloads it); with it, the page listens to /ui/alerts/stream (server-sent events)
// and, each time the stream says the inbox changed, fetches the inbox table again (the
// same page, asked for as a fragment) and puts it in place of the old one, saying so in
// a polite live region. The stream and the refreshes are the page's own doing: they do
// not keep the session from ending idle (the X-Accord-Background header says so), and
// when the session ends the stream says why and the page goes to the sign-in page.
(function () {
  "use strict";
  var live = document.getElementById("alert-live");
  if (!live || typeof window.EventSource !== "function" || !window.fetch) { return; }
  var timer = null;
  var busy = false;
  var again = false;

  function say(text) { live.textContent = text; }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.pathname + window.location.search, {
      credentials: "same-origin",
      headers: { "HX-Request": "true", "X-Accord-Background": "1" }
    }).then(function (response) {
      var redirect = response.headers.get("HX-Redirect");
      if (redirect) { window.location.assign(redirect); return null; }
      if (!response.ok) { throw new Error("the inbox answered " + response.status); }
      return response.text();
    }).then(function (html) {
      if (html === null) { return; }
      var fresh = new DOMParser().parseFromString(html, "text/html")
        .getElementById("alert-inbox");
      var old = document.getElementById("alert-inbox");
      if (!fresh || !old) { return; }
      old.replaceWith(document.importNode(fresh, true));
      say("Inbox updated: " + fresh.getAttribute("data-summary") + ".");
    }).catch(function () {
      say("The inbox could not be updated. Refresh the page to see the latest alerts.");
    }).finally(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }

  var source = new EventSource(live.getAttribute("data-stream"));
  source.addEventListener("open", function () { say("Updating live."); });
  source.addEventListener("inbox", function () {
    // Several changes at once (a batch of alerts) are one refresh.
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 150);
  });
  source.addEventListener("ended", function (event) {
    source.close();
    var here = window.location.pathname + window.location.search;
    window.location.assign("/ui/sign-in?why=" + encodeURIComponent(event.data) +
                           "&next=" + encodeURIComponent(here));
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      say("Live updates have stopped. Refresh the page to see new alerts.");
    }
  });
})();
