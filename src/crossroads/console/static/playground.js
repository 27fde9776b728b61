// The playground: one conversation to several models, streamed side by side.
// Model output is put in the page as text only (textContent / Text nodes).
"use strict";
(function () {
  var form = document.getElementById("playground");
  if (!form) return;
  var el = window.Crossroads.el;
  var panes = document.getElementById("panes");
  var status = document.getElementById("play-status");

  function value(id) { return document.getElementById(id).value; }

  function conversation() {
    var temperature = value("temperature");
    var maxTokens = value("max_tokens");
    return {
      system: value("system"),
      user: value("user"),
      temperature: temperature === "" ? null : Number(temperature),
      max_tokens: maxTokens === "" ? null : parseInt(maxTokens, 10),
      json_mode: document.getElementById("json_mode").checked,
    };
  }

  function figure(list, label) {
    list.appendChild(el("dt", label));
    var dd = el("dd", "…");
    list.appendChild(dd);
    return dd;
  }

  function makePane(select) {
    var option = select.options[select.selectedIndex];
    var kind = option.getAttribute("data-kind") || "unknown";
    var pane = el("article", null, "pane");
    pane.setAttribute("aria-label", "Answer from " + select.value);
    var title = el("h3", select.value);
    pane.appendChild(title);
    var meta = el("div", null, "row");
    var badge = el("span", kind, "badge " + (kind === "open" || kind === "closed" ? kind : "unknown"));
    badge.setAttribute("title", kind === "open" ? "open weights" : kind === "closed" ? "closed (API only)" : kind);
    meta.appendChild(badge);
    meta.appendChild(el("span", option.getAttribute("data-licence") || "—", "muted licence"));
    pane.appendChild(meta);
    var answer = el("div", null, "answer");
    answer.setAttribute("data-role", "answer");
    var text = document.createTextNode("");
    answer.appendChild(text);
    pane.appendChild(answer);
    var list = el("dl", null, "figures");
    var f = {
      status: figure(list, "Status"),
      ttft: figure(list, "Time to first token"),
      speed: figure(list, "Tokens/s"),
      tokensIn: figure(list, "Tokens in"),
      tokensOut: figure(list, "Tokens out"),
      cost: figure(list, "Cost"),
      guard: figure(list, "Guard"),
    };
    pane.appendChild(list);
    var link = el("a", "Log entry", "log-link");
    link.hidden = true;
    pane.appendChild(link);
    panes.appendChild(pane);
    return { pane: pane, text: text, figures: f, link: link, model: select.value };
  }

  function costText(row) {
    if (row.cost_usd === null || row.cost_usd === undefined) return "unknown price";
    var usd = row.cost_usd;
    var shown = "$" + (usd > 0 && usd < 0.01 ? usd.toFixed(6) : usd.toFixed(4));
    if (row.price_flag === "self-hosted") {
      return usd > 0 ? shown + " (self-hosted, GPU-hour)" : shown + " (self-hosted, this machine)";
    }
    return shown + " (vendor price)";
  }

  function guardText(decisions) {
    if (!decisions || !decisions.length) return "nothing redacted or blocked";
    return decisions.map(function (d) {
      return d.action + " " + d.category + (d.count > 1 ? " ×" + d.count : "") + " (" + d.stage + ", " + d.check + ")";
    }).join("; ");
  }

  function fillFromLedger(p, requestId) {
    if (!requestId) return Promise.resolve();
    return fetch(form.getAttribute("data-call") + encodeURIComponent(requestId), {
      credentials: "same-origin", headers: { accept: "application/json" },
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (row) {
      if (!row) { p.figures.cost.textContent = "not recorded"; return; }
      p.figures.cost.textContent = costText(row);
      p.figures.guard.textContent = guardText(row.guard_decisions);
      if (p.figures.tokensIn.textContent === "…") p.figures.tokensIn.textContent = String(row.prompt_tokens);
      if (p.figures.tokensOut.textContent === "…") p.figures.tokensOut.textContent = String(row.completion_tokens);
      p.link.href = form.getAttribute("data-logs") + encodeURIComponent(requestId);
      p.link.hidden = false;
      p.pane.setAttribute("data-done", "true");
    });
  }

  function run(p, body) {
    var started = performance.now();
    var first = null;
    var last = null;
    var usage = null;
    var failed = null;
    p.figures.status.textContent = "waiting";
    return window.Crossroads.post(form.getAttribute("data-chat"), body).then(function (response) {
      var requestId = response.headers.get("x-request-id");
      if (!response.ok || !response.body) {
        return response.json().catch(function () { return {}; }).then(function (err) {
          var message = (err.error && (err.error.message || err.error)) || ("HTTP " + response.status);
          p.figures.status.textContent = "error " + response.status + ": " + message;
          p.pane.setAttribute("data-error", "true");
          ["ttft", "speed", "tokensIn", "tokensOut"].forEach(function (k) { p.figures[k].textContent = "—"; });
          return fillFromLedger(p, requestId);
        });
      }
      p.figures.status.textContent = "streaming";
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function handle(event) {
        var lines = event.split("\n");
        for (var i = 0; i < lines.length; i++) {
          var line = lines[i];
          if (line.indexOf("data:") !== 0) continue;
          var data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          var chunk;
          try { chunk = JSON.parse(data); } catch (e) { continue; }
          if (chunk.error) { failed = chunk.error.message || "stream failed"; continue; }
          if (chunk.usage) usage = chunk.usage;
          var choices = chunk.choices || [];
          for (var j = 0; j < choices.length; j++) {
            var delta = choices[j].delta || {};
            var piece = delta.content || delta.refusal || "";
            if (piece) {
              var now = performance.now();
              if (first === null) {
                first = now;
                p.figures.ttft.textContent = ((first - started) / 1000).toFixed(3) + " s";
              }
              last = now;
              p.text.appendData(piece);
            }
          }
        }
      }
      function pump() {
        return reader.read().then(function (step) {
          if (step.done) return;
          buffer += decoder.decode(step.value, { stream: true });
          var cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            handle(buffer.slice(0, cut));
            buffer = buffer.slice(cut + 2);
          }
          return pump();
        });
      }
      return pump().then(function () {
        if (buffer) handle(buffer);
        if (first === null) p.figures.ttft.textContent = "—";
        if (usage) {
          p.figures.tokensIn.textContent = String(usage.prompt_tokens);
          p.figures.tokensOut.textContent = String(usage.completion_tokens);
          var seconds = first !== null && last !== null ? (last - first) / 1000 : 0;
          p.figures.speed.textContent = seconds > 0 && usage.completion_tokens > 1
            ? ((usage.completion_tokens - 1) / seconds).toFixed(1)
            : "—";
        } else {
          p.figures.speed.textContent = "—";
        }
        if (failed) {
          p.figures.status.textContent = "error: " + failed;
          p.pane.setAttribute("data-error", "true");
        } else {
          p.figures.status.textContent = "done";
        }
        return fillFromLedger(p, requestId);
      });
    }).catch(function (e) {
      p.figures.status.textContent = "error: " + e.message;
      p.pane.setAttribute("data-error", "true");
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    status.textContent = "";
    var selects = Array.prototype.slice.call(form.querySelectorAll("select[name=model]"))
      .filter(function (s) { return s.value; });
    if (!selects.length) { status.textContent = "Pick at least one model."; return; }
    if (!value("user").trim()) { status.textContent = "Write a user message."; return; }
    while (panes.firstChild) panes.removeChild(panes.firstChild);
    var shared = conversation();
    var button = document.getElementById("send");
    button.disabled = true;
    Promise.all(selects.map(function (select) {
      var body = Object.assign({ model: select.value }, shared);
      return run(makePane(select), body);
    })).then(function () { button.disabled = false; });
  });

  var suiteForm = document.getElementById("suite-form");
  var suiteStatus = document.getElementById("suite-status");
  if (suiteForm) suiteForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var shared = conversation();
    suiteStatus.className = "";
    suiteStatus.textContent = "Saving…";
    window.Crossroads.post(form.getAttribute("data-suite"), {
      suite: value("suite-name"),
      system: shared.system,
      user: shared.user,
      expected: value("expected"),
      temperature: shared.temperature,
      max_tokens: shared.max_tokens,
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (result) {
      if (!result.ok) {
        suiteStatus.className = "error";
        suiteStatus.textContent = result.body.error || "Could not save.";
        return;
      }
      suiteStatus.className = "ok";
      suiteStatus.textContent = "Saved as item " + result.body.item + " in " + result.body.path +
        ". Run it: " + result.body.run;
    });
  });
})();
