// Live updates for the inbox, without a reload: when the server says a conversation
// changed, fetch this page again and swap in the parts that show data (the list, or
// the messages and facts). What the agent is typing is left alone.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch || !window.DOMParser) { return; }
  var parts = ["table.list", "p.empty", "ol.messages", "p.facts"];
  var pending = null;
  function refresh() {
    pending = null;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        parts.forEach(function (css) {
          var now = document.querySelector(css);
          var next = fresh.querySelector(css);
          if (now && next) { now.replaceWith(next); }
        });
      })
      .catch(function () { /* the next event tries again */ });
  }
  var events = new EventSource("/events");
  function changed() {
    if (!pending) { pending = setTimeout(refresh, 300); }
  }
  events.addEventListener("update", changed);
  events.addEventListener("resync", changed);
})();
