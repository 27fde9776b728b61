/* The Decision page: reads the controls, re-ranks with CrossroadsDecide (decide.js) and
 * draws the ranking, the exclusions, the flip points and the cost chart. Everything is put
 * in the page with textContent / DOM nodes (never as HTML). The time of the last
 * re-ranking (ms, performance.now()) is in #decide-results[data-rerank-ms]. */
(function () {
  "use strict";
  var D = window.CrossroadsDecide;
  var data = JSON.parse(document.getElementById("decision-data").getAttribute("data-json"));
  var model = data.model;
  var loaded = data.profile;
  var SVG = "http://www.w3.org/2000/svg";
  var CHART = { w: 720, h: 340, left: 64, right: 16, top: 12, bottom: 40, vmin: 5, vmax: 12 };
  var $ = function (id) { return document.getElementById(id); };
  var state = JSON.parse(JSON.stringify(loaded));

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function usd(x) {
    if (x === null || x === undefined) return "—";
    if (x >= 100) return "$" + D.fmt.f(x, 0, true);
    return "$" + D.fmt.f(x, 2, true);
  }

  function numberOrNull(input) {
    var text = input.value.trim();
    if (text === "") return null;
    var value = Number(text);
    return isFinite(value) && value >= 0 ? value : null;
  }

  // ---------------------------------------------------------------- controls -> profile

  function readControls() {
    var c = state.constraints;
    c.on_premises = $("c-on-premises").checked;
    c.no_ml_engineers = $("c-no-ml").checked;
    c.regulated = $("c-regulated").checked;
    c.monthly_budget_usd = numberOrNull($("c-budget"));
    var latency = numberOrNull($("c-latency"));
    c.p95_latency_s = latency === 0 ? null : latency;
    c.languages = Array.prototype.filter.call($("c-languages").options, function (o) {
      return o.selected;
    }).map(function (o) { return o.value; });
    c.languages_strict = $("c-languages-strict").checked;
    return state;
  }

  function showControls(profile) {
    Object.keys(model.dimensions).forEach(function (k) {
      var w = profile.weights[k];
      var range = document.querySelector('[data-weight="' + k + '"]');
      range.max = String(Math.max(10, w));
      range.value = String(w);
      document.querySelector('[data-weight-number="' + k + '"]').value = String(w);
    });
    var c = profile.constraints;
    $("c-on-premises").checked = c.on_premises;
    $("c-no-ml").checked = c.no_ml_engineers;
    $("c-regulated").checked = c.regulated;
    $("c-budget").value = c.monthly_budget_usd === null ? "" : String(c.monthly_budget_usd);
    $("c-latency").value = c.p95_latency_s === null ? "" : String(c.p95_latency_s);
    Array.prototype.forEach.call($("c-languages").options, function (o) {
      o.selected = c.languages.indexOf(o.value) >= 0;
    });
    $("c-languages-strict").checked = c.languages_strict;
    $("volume").value = String(Math.log10(c.volume_tokens_per_month));
    $("volume-number").value = String(c.volume_tokens_per_month);
  }

  // ---------------------------------------------------------------- drawing

  function drawRanking(advice) {
    var body = $("ranking").tBodies[0];
    var rows = advice.ranking.map(function (row, i) {
      var tr = el("tr");
      tr.dataset.model = row.name;
      tr.appendChild(el("td", String(i + 1), "num"));
      var name = el("td");
      name.appendChild(el("strong", row.label));
      name.appendChild(el("div", row.name, "muted"));
      tr.appendChild(name);
      var kind = el("td");
      kind.appendChild(el("span", row.kind, "badge " + (row.kind === "open" ? "open" : "closed")));
      tr.appendChild(kind);
      tr.appendChild(el("td", D.fmt.f(row.score, 2), "num score"));
      tr.appendChild(el("td", usd(row.monthly_cost_usd), "num"));
      var why = el("td");
      var list = el("ul", null, "reasons");
      row.reasons.concat(row.notes).forEach(function (r) { list.appendChild(el("li", r)); });
      why.appendChild(list);
      tr.appendChild(why);
      return tr;
    });
    body.replaceChildren.apply(body, rows);
    var top = advice.ranking[0];
    $("top-choice").textContent = top
      ? "Top choice: " + top.label + " (" + D.fmt.f(top.score, 2) + "/10)"
      : "No option satisfies the hard constraints.";
    $("top-choice").dataset.model = top ? top.name : "";
  }

  function drawExcluded(advice) {
    var items = advice.excluded.map(function (x) {
      var li = el("li");
      li.appendChild(el("strong", x.label));
      li.appendChild(document.createTextNode(": " + x.reasons.join("; ")));
      return li;
    });
    if (!items.length) items = [el("li", "None.", "muted")];
    $("excluded").replaceChildren.apply($("excluded"), items);
  }

  function drawFlips(advice) {
    var found = advice.flip_points.filter(function (f) { return f.value !== null; });
    var stay = advice.flip_points.filter(function (f) { return f.value === null; });
    var items = found.concat(stay).map(function (f) {
      var li = el("li", f.sentence.charAt(0).toUpperCase() + f.sentence.slice(1) + ".",
        f.value === null ? "muted" : "flip");
      li.dataset.parameter = f.parameter;
      li.dataset.direction = f.direction;
      if (f.value !== null) li.dataset.value = String(f.value);
      return li;
    });
    $("flips").replaceChildren.apply($("flips"), items);
  }

  function drawChart(advice, volume) {
    var chart = $("cost-chart");
    var title = chart.querySelector("title");
    chart.replaceChildren(title);
    var kept = advice.ranking.map(function (r) { return r.name; });
    var byName = {};
    model.candidates.forEach(function (c) { byName[c.name] = c; });
    var series = kept.filter(function (n) { return byName[n].cost; }).map(function (n) {
      var pts = [];
      for (var v = CHART.vmin; v <= CHART.vmax + 1e-9; v += 0.125) {
        pts.push([v, D.costAt(byName[n].cost, Math.pow(10, v))]);
      }
      return { name: n, label: byName[n].label, pts: pts };
    });
    var lo = Infinity, hi = -Infinity;
    series.forEach(function (s) {
      s.pts.forEach(function (p) { if (p[1] > 0) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); } });
    });
    if (!series.length || !isFinite(lo)) return;
    var ylo = Math.floor(Math.log10(lo)), yhi = Math.ceil(Math.log10(hi));
    if (yhi === ylo) yhi += 1;
    var pw = CHART.w - CHART.left - CHART.right, ph = CHART.h - CHART.top - CHART.bottom;
    var x = function (v) { return CHART.left + (v - CHART.vmin) / (CHART.vmax - CHART.vmin) * pw; };
    var y = function (usdValue) {
      return CHART.top + ph - (Math.log10(Math.max(usdValue, Math.pow(10, ylo))) - ylo) / (yhi - ylo) * ph;
    };
    var g = svg("g", { "class": "axes" });
    for (var v = CHART.vmin; v <= CHART.vmax; v++) {
      g.appendChild(svg("line", { x1: x(v), x2: x(v), y1: CHART.top, y2: CHART.top + ph, "class": "grid" }));
      g.appendChild(svg("text", { x: x(v), y: CHART.h - 22, "text-anchor": "middle" }, D.fmtTokens(Math.pow(10, v))));
    }
    for (var e = ylo; e <= yhi; e++) {
      g.appendChild(svg("line", { x1: CHART.left, x2: CHART.left + pw, y1: y(Math.pow(10, e)), y2: y(Math.pow(10, e)), "class": "grid" }));
      g.appendChild(svg("text", { x: CHART.left - 6, y: y(Math.pow(10, e)) + 4, "text-anchor": "end" }, "$" + D.fmtTokens(Math.pow(10, e))));
    }
    g.appendChild(svg("text", { x: CHART.left + pw / 2, y: CHART.h - 4, "text-anchor": "middle" }, "tokens per month"));
    chart.appendChild(g);
    var legend = $("cost-legend");
    var entries = [];
    series.forEach(function (s, i) {
      var d = s.pts.map(function (p, j) { return (j ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1); }).join(" ");
      var cls = "series s" + (i % 10) + (i === 0 ? " top" : "");
      chart.appendChild(svg("path", { d: d, "class": cls, "data-model": s.name }));
      var li = el("li");
      var swatch = el("span", null, "swatch s" + (i % 10));
      swatch.setAttribute("aria-hidden", "true");
      li.appendChild(swatch);
      li.appendChild(document.createTextNode(s.label + (i === 0 ? " (top choice)" : "")));
      entries.push(li);
    });
    var cv = Math.log10(volume);
    if (cv >= CHART.vmin && cv <= CHART.vmax) {
      chart.appendChild(svg("line", { x1: x(cv), x2: x(cv), y1: CHART.top, y2: CHART.top + ph, "class": "now", id: "chart-now" }));
    }
    advice.flip_points.forEach(function (f) {
      if (f.kind !== "volume" || f.value === null) return;
      var fv = Math.log10(f.value);
      if (fv < CHART.vmin || fv > CHART.vmax) return;
      chart.appendChild(svg("line", { x1: x(fv), x2: x(fv), y1: CHART.top, y2: CHART.top + ph, "class": "flip" }));
    });
    legend.replaceChildren.apply(legend, entries);
  }

  function exportLinks(profile) {
    var query = "?profile=" + encodeURIComponent(JSON.stringify(profile)) +
      (data.run ? "&run=" + encodeURIComponent(data.run) : "") +
      (data.models ? "&models=" + encodeURIComponent(data.models) : "");
    ["yaml", "html", "md", "json"].forEach(function (fmt) {
      var a = $("export-" + fmt);
      a.href = a.href.split("?")[0] + query;
    });
  }

  function update() {
    var t0 = performance.now();
    var profile = readControls();
    var advice = D.advise(model, profile);
    drawRanking(advice);
    drawExcluded(advice);
    drawFlips(advice);
    drawChart(advice, profile.constraints.volume_tokens_per_month);
    $("volume-text").textContent = D.fmtTokens(profile.constraints.volume_tokens_per_month) + " tokens/month";
    exportLinks(profile);
    var ms = performance.now() - t0;
    $("decide-results").dataset.rerankMs = ms.toFixed(3);
    window.CrossroadsDecidePage = { advice: advice, profile: profile, lastMs: ms };
  }

  // ---------------------------------------------------------------- events

  document.querySelectorAll("[data-weight]").forEach(function (range) {
    range.addEventListener("input", function () {
      var k = range.dataset.weight;
      state.weights[k] = Number(range.value);
      document.querySelector('[data-weight-number="' + k + '"]').value = range.value;
      update();
    });
  });
  document.querySelectorAll("[data-weight-number]").forEach(function (input) {
    input.addEventListener("input", function () {
      var k = input.dataset.weightNumber, value = Number(input.value);
      if (input.value.trim() === "" || !isFinite(value) || value < 0) return;
      state.weights[k] = value;
      var range = document.querySelector('[data-weight="' + k + '"]');
      range.max = String(Math.max(10, value));
      range.value = String(value);
      update();
    });
  });
  $("volume").addEventListener("input", function () {
    var volume = Number(Math.pow(10, Number($("volume").value)).toPrecision(3));
    state.constraints.volume_tokens_per_month = volume;
    $("volume-number").value = String(volume);
    update();
  });
  $("volume-number").addEventListener("input", function () {
    var volume = Number($("volume-number").value);
    if (!isFinite(volume) || volume <= 0) return;
    state.constraints.volume_tokens_per_month = volume;
    $("volume").value = String(Math.log10(volume));
    update();
  });
  ["c-on-premises", "c-no-ml", "c-regulated", "c-budget", "c-latency", "c-languages",
    "c-languages-strict"].forEach(function (id) {
    $(id).addEventListener(id === "c-budget" || id === "c-latency" ? "input" : "change", update);
  });
  $("decide-reset").addEventListener("click", function () {
    state = JSON.parse(JSON.stringify(loaded));
    showControls(state);
    update();
  });
  $("decide-controls").addEventListener("submit", function (event) { event.preventDefault(); });

  update();
})();
