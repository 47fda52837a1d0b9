// Embed the support chat on any page: <script src="https://support.example.com/widget.js" defer></script>
(function () {
  "use strict";
  var script = document.currentScript;
  var origin = new URL(script ? script.src : "/", window.location.href).origin;
  var open = false;
  var frame = document.createElement("iframe");
  frame.src = origin + "/chat";
  frame.title = "Support chat";
  frame.style.cssText = "position:fixed;bottom:88px;right:24px;width:360px;height:520px;max-height:80vh;border:0;border-radius:12px;box-shadow:0 8px 32px rgba(0,0,0,.25);display:none;z-index:2147483646;background:#fff";
  var button = document.createElement("button");
  button.type = "button";
  button.setAttribute("aria-label", "Support chat");
  button.textContent = "💬";
  button.style.cssText = "position:fixed;bottom:24px;right:24px;width:52px;height:52px;border-radius:26px;border:0;background:#1f3a5f;color:#fff;font-size:24px;cursor:pointer;z-index:2147483647;box-shadow:0 4px 16px rgba(0,0,0,.25)";
  button.onclick = function () { open = !open; frame.style.display = open ? "block" : "none"; };
  document.body.appendChild(frame);
  document.body.appendChild(button);
})();
