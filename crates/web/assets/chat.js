// The website chat page. No build step: plain JavaScript against /chat/api.
// Every text is put in the page with textContent, never as HTML.
(function () {
  "use strict";
  var zh = (navigator.language || "").toLowerCase().indexOf("zh") === 0;
  var words = zh
    ? { title: "在线客服", send: "发送", placeholder: "请输入您的问题…", you: "您", bot: "智能助手", agent: "客服", offline: "网络中断，正在重试…",
        email: "留下邮箱，我们也会通过邮件回复您", save: "保存", saved: "已记下：", badEmail: "邮箱地址不正确", writeFirst: "请先发一条消息" }
    : { title: "Support", send: "Send", placeholder: "Type your question…", you: "You", bot: "Assistant", agent: "Support", offline: "Connection lost, retrying…",
        email: "Leave your email and we will also reply by mail", save: "Save", saved: "Noted: ", badEmail: "That is not an email address", writeFirst: "Send a message first" };
  document.documentElement.lang = zh ? "zh-CN" : "en";
  document.getElementById("title").textContent = words.title;
  document.getElementById("go").textContent = words.send;
  var input = document.getElementById("text");
  input.placeholder = words.placeholder;
  var log = document.getElementById("log");
  var status = document.getElementById("status");
  var last = 0;
  var shown = {};
  // The visitor token: kept by the page (the server also sets it as a cookie, which a
  // widget on another site may not be allowed to use).
  var token = null;
  try { token = window.localStorage.getItem("fd_visitor"); } catch (e) { token = null; }
  function headers() {
    var h = { "content-type": "application/json", "x-requested-with": "frontdesk-chat" };
    if (token) { h.authorization = "Bearer " + token; }
    return h;
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function render(m) {
    if (shown[m.id]) { return; }
    shown[m.id] = true;
    var box = document.createElement("div");
    box.className = "msg " + m.author;
    var who = document.createElement("div");
    who.className = "who";
    who.textContent = m.author === "contact" ? words.you : (m.author === "agent" ? words.agent : words.bot);
    var body = document.createElement("div");
    body.textContent = m.text;
    box.appendChild(who);
    box.appendChild(body);
    (m.files || []).forEach(function (f) {
      var a = document.createElement("a");
      a.className = "file";
      a.href = f.url;
      a.textContent = f.name;
      a.setAttribute("download", "");
      box.appendChild(a);
    });
    if (m.choices && m.choices.length) {
      var row = document.createElement("div");
      row.className = "choices";
      m.choices.forEach(function (c) {
        var b = document.createElement("button");
        b.type = "button";
        b.textContent = c;
        b.onclick = function () { send(c); };
        row.appendChild(b);
      });
      box.appendChild(row);
    }
    if (m.author === "contact") {
      var mine = log.querySelector(".pending");
      if (mine) { log.removeChild(mine); }
    }
    log.appendChild(box);
    log.scrollTop = log.scrollHeight;
  }

  // A new visitor, or the same one again (the server keeps a valid token).
  function session() {
    return fetch("/chat/api/session", { method: "POST", headers: headers(), credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        token = s.visitor_token;
        try { window.localStorage.setItem("fd_visitor", token); } catch (e) { /* private mode */ }
      });
  }

  var timer = null;
  var polling = false;
  // Fetch what is new now (after an event, or on the timer as a fallback).
  function kick() {
    if (polling) { return; }
    clearTimeout(timer);
    poll();
  }

  function poll() {
    polling = true;
    fetch("/chat/api/messages?after=" + last, { headers: headers(), credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { return session().then(function () { return { items: [] }; }); }
        if (!r.ok) { throw new Error(r.status); }
        return r.json();
      })
      .then(function (page) {
        status.textContent = "";
        page.items.forEach(function (m) { render(m); if (m.id > last) { last = m.id; } });
      })
      .catch(function () { status.textContent = words.offline; })
      .then(function () { polling = false; timer = setTimeout(poll, events ? 10000 : 1500); });
  }

  // Server-sent events say when something changed; polling stays as the fallback.
  var events = null;
  function listen() {
    if (!window.EventSource || !token) { return; }
    events = new EventSource("/chat/api/stream?token=" + encodeURIComponent(token));
    events.addEventListener("update", kick);
    events.addEventListener("resync", kick);
    events.onerror = function () { /* the browser reconnects; polling covers the gap */ };
  }

  // A message keeps its client id across retries, so it is stored once.
  function send(text, clientId, tries) {
    clientId = clientId || uuid();
    tries = tries || 0;
    if (tries === 0) {
      var mine = document.createElement("div");
      mine.className = "msg contact pending";
      mine.textContent = text;
      log.appendChild(mine);
      log.scrollTop = log.scrollHeight;
    }
    fetch("/chat/api/messages", {
      method: "POST", headers: headers(), credentials: "same-origin",
      body: JSON.stringify({ text: text, client_id: clientId })
    }).then(function (r) {
      if (r.status === 429 || r.status >= 500) { throw new Error(r.status); }
      status.textContent = "";
    }).catch(function () {
      status.textContent = words.offline;
      if (tries < 5) { setTimeout(function () { send(text, clientId, tries + 1); }, 1000 * (tries + 1)); }
    });
  }

  document.getElementById("send").onsubmit = function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    send(text);
  };
  input.onkeydown = function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); document.getElementById("send").onsubmit(e); }
  };
  // An optional email address, to continue by mail.
  var emailForm = document.getElementById("email");
  var emailInput = document.getElementById("email-address");
  emailInput.placeholder = words.email;
  document.getElementById("email-go").textContent = words.save;
  emailForm.onsubmit = function (e) {
    e.preventDefault();
    fetch("/chat/api/email", {
      method: "POST", headers: headers(), credentials: "same-origin",
      body: JSON.stringify({ email: emailInput.value.trim() })
    }).then(function (r) {
      return r.json().then(function (b) { return { ok: r.ok, body: b }; });
    }).then(function (r) {
      if (r.ok) { status.textContent = words.saved + r.body.email; emailForm.hidden = true; }
      else { status.textContent = r.body && /first/.test(r.body.error || "") ? words.writeFirst : words.badEmail; }
    }).catch(function () { status.textContent = words.offline; });
  };
  session().then(function () { listen(); poll(); }, poll);
})();
