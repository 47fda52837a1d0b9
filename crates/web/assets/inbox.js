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

// Keyboard: j/k move through the list, o or Enter opens, r goes to the reply box,
// e resolves. Not while typing in a field.
(function () {
  "use strict";
  var rows = function () { return Array.prototype.slice.call(document.querySelectorAll("tr[data-href]")); };
  var at = -1;
  function mark(i) {
    var all = rows();
    if (!all.length) { return; }
    at = Math.max(0, Math.min(all.length - 1, i));
    all.forEach(function (r, n) { r.classList.toggle("selected", n === at); });
    all[at].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) { return; }
    if (e.key === "j") { mark(at + 1); }
    else if (e.key === "k") { mark(at - 1); }
    else if ((e.key === "o" || e.key === "Enter") && at >= 0 && rows()[at]) { window.location.href = rows()[at].getAttribute("data-href"); }
    else if (e.key === "r" && document.getElementById("reply-text")) { e.preventDefault(); document.getElementById("reply-text").focus(); }
    else if (e.key === "e" && document.getElementById("resolve")) { document.getElementById("resolve").click(); }
  });
})();

// Canned responses: typing /word at the start of the reply shows the matches; a click
// or Tab puts the text in. (The server also expands a reply that is just /shortcut.)
(function () {
  "use strict";
  var box = document.getElementById("reply-text");
  var list = document.getElementById("canned");
  if (!box || !list) { return; }
  var items = Array.prototype.slice.call(list.querySelectorAll("li"));
  function shown() { return items.filter(function (li) { return !li.hidden; }); }
  function use(li) { box.value = li.getAttribute("data-text"); list.hidden = true; box.focus(); }
  box.addEventListener("input", function () {
    var v = box.value;
    if (v.charAt(0) !== "/" || v.indexOf(" ") >= 0) { list.hidden = true; return; }
    var word = v.slice(1).toLowerCase();
    items.forEach(function (li) { li.hidden = li.getAttribute("data-shortcut").indexOf(word) !== 0; });
    list.hidden = shown().length === 0;
  });
  box.addEventListener("keydown", function (e) {
    if (e.key === "Tab" && !list.hidden && shown().length) { e.preventDefault(); use(shown()[0]); }
  });
  items.forEach(function (li) { li.addEventListener("click", function () { use(li); }); });
})();
