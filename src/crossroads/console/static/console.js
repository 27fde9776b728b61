// Shared by every console page (no inline scripts: the CSP forbids them).
// - htmx requests carry the session's CSRF token (x-csrf-token);
// - `data-copy="ID"` buttons copy the text of element ID;
// - `Crossroads.post(url, body)` for page scripts: fetch with the CSRF token.
"use strict";
(function () {
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["x-csrf-token"] = csrfToken();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(source); });
    } else {
      select(source);
      try { document.execCommand("copy"); done(); } catch (e) { /* selected for the user */ }
    }
  });

  function select(node) {
    if (node.select) { node.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  window.Crossroads = {
    csrfToken: csrfToken,
    post: function (url, body, extra) {
      var init = Object.assign({
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrf-token": csrfToken() },
        body: JSON.stringify(body),
      }, extra || {});
      return fetch(url, init);
    },
    // An element with text only (never HTML): el("td", "text", "class").
    el: function (tag, text, className) {
      var node = document.createElement(tag);
      if (text !== undefined && text !== null) node.textContent = String(text);
      if (className) node.className = className;
      return node;
    },
  };
})();
