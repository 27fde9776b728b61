/* Crossroads decision: the advisor's ranking, exclusions and flip points, in the browser.
 *
 * A line-by-line port of crossroads.decide (ranking.py, exclusions.py, flips.py and the cost
 * arithmetic of cost.py), so that moving a slider re-ranks without a round trip and gives
 * the numbers and sentences the Python advisor gives for the same profile. Python's exact
 * summation (math.fsum), its round-half-even rounding and its format specs (:g, :.3g, :.2f,
 * :,.0f, !r) are reproduced exactly below. tests/console/test_decide_js.py holds this file
 * to the advisor.
 *
 * Public: window.CrossroadsDecide = {advise, rank, costAt, fsum, fmt, fmtTokens, pyRepr}.
 * (c) the Crossroads authors; same licence as the package.
 */
(function (global) {
  "use strict";

  var WEIGHT_RANGE = 10.0;
  var VOLUME_DECADES = 3;
  var VOLUME_STEPS_PER_DECADE = 20;
  var COST_FLOOR = 0.01;
  var SMALL_TIERS = { cpu: true, "small-gpu": true };

  // ------------------------------------------------------------------ Python arithmetic

  /* math.fsum: Shewchuk's exact summation with CPython's final half-even correction. */
  function fsum(xs) {
    var partials = [];
    var i, j, x, y, t, hi, lo, yr, n;
    for (j = 0; j < xs.length; j++) {
      x = xs[j];
      i = 0;
      for (var k = 0; k < partials.length; k++) {
        y = partials[k];
        if (Math.abs(x) < Math.abs(y)) { t = x; x = y; y = t; }
        hi = x + y;
        lo = y - (hi - x);
        if (lo !== 0) { partials[i] = lo; i += 1; }
        x = hi;
      }
      partials.length = i;
      partials.push(x);
    }
    hi = 0.0;
    n = partials.length;
    if (n > 0) {
      lo = 0.0;
      hi = partials[--n];
      while (n > 0) {
        x = hi;
        y = partials[--n];
        hi = x + y;
        yr = hi - x;
        lo = y - yr;
        if (lo !== 0.0) break;
      }
      if (n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0))) {
        y = lo * 2;
        x = hi + y;
        yr = x - hi;
        if (y === yr) hi = x;
      }
    }
    return hi;
  }

  var F64 = new Float64Array(1);
  var U32 = new Uint32Array(F64.buffer);
  var LOW = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;

  /* |x| (finite, non-zero) as an exact fraction m * 2**e: [BigInt m, Number e]. */
  function exactParts(x) {
    F64[0] = Math.abs(x);
    var lo = U32[LOW], hi = U32[1 - LOW];
    var expBits = (hi >>> 20) & 0x7ff;
    var mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
    if (expBits === 0) return [mant, -1074];
    return [mant | (1n << 52n), expBits - 1075];
  }

  /* round-half-even(|x| * 10**d) as a BigInt, computed on the exact binary value. */
  function scaledRound(x, d) {
    if (x === 0) return 0n;
    var parts = exactParts(x), m = parts[0], e = parts[1];
    var num = m, den = 1n;
    if (e >= 0) num <<= BigInt(e); else den <<= BigInt(-e);
    if (d >= 0) num *= 10n ** BigInt(d); else den *= 10n ** BigInt(-d);
    var q = num / den, r2 = (num % den) * 2n;
    if (r2 > den || (r2 === den && (q & 1n) === 1n)) q += 1n;
    return q;
  }

  /* round(x, d) as Python computes it (correctly rounded, ties to even). */
  function pyRound(x, d) {
    if (!isFinite(x) || x === 0) return x;
    var y = Math.abs(x) * Math.pow(10, d);
    var f = y - Math.floor(y);
    var q;
    if (Math.abs(f - 0.5) > 1e-6 && y < 1e15 && d >= 0 && d <= 22) {
      q = Math.floor(y) + (f > 0.5 ? 1 : 0);
      var v = q / Math.pow(10, d);
      return x < 0 ? -v : v;
    }
    q = scaledRound(x, d);
    var out = parseFloat(q.toString() + "e" + (-d));
    return x < 0 ? -out : out;
  }

  function group(intText) {
    return intText.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  /* f"{x:.{d}f}" (with "," grouping when comma). */
  function fmtF(x, d, comma) {
    if (isNaN(x)) return "nan";
    if (!isFinite(x)) return x < 0 ? "-inf" : "inf";
    var neg = x < 0 || Object.is(x, -0);
    var digits = scaledRound(x, d).toString();
    var intPart, frac = "";
    if (d > 0) {
      while (digits.length <= d) digits = "0" + digits;
      intPart = digits.slice(0, digits.length - d);
      frac = "." + digits.slice(digits.length - d);
    } else {
      intPart = digits;
    }
    if (comma) intPart = group(intPart);
    return (neg ? "-" : "") + intPart + frac;
  }

  /* f"{x:.{p}g}" (p = 6 for plain :g): Python's general format. */
  function fmtG(x, p) {
    if (p === undefined) p = 6;
    if (p === 0) p = 1;
    if (isNaN(x)) return "nan";
    if (!isFinite(x)) return x < 0 ? "-inf" : "inf";
    var neg = x < 0 || Object.is(x, -0);
    if (x === 0) return neg ? "-0" : "0";
    var exp = Math.floor(Math.log10(Math.abs(x)));
    var q = scaledRound(x, p - 1 - exp);
    var lower = 10n ** BigInt(p - 1), upper = 10n ** BigInt(p);
    if (q >= upper) { exp += 1; q = scaledRound(x, p - 1 - exp); }
    else if (q < lower) { exp -= 1; q = scaledRound(x, p - 1 - exp); }
    if (q >= upper) { exp += 1; q = scaledRound(x, p - 1 - exp); }
    var digits = q.toString();
    var out;
    if (exp >= -4 && exp < p) {
      var decimals = p - 1 - exp;
      if (decimals > 0) {
        while (digits.length <= decimals) digits = "0" + digits;
        out = digits.slice(0, digits.length - decimals) + "." + digits.slice(digits.length - decimals);
        out = out.replace(/0+$/, "").replace(/\.$/, "");
      } else {
        out = digits;
      }
    } else {
      var mant = digits.slice(0, 1) + (digits.length > 1 ? "." + digits.slice(1) : "");
      mant = mant.indexOf(".") >= 0 ? mant.replace(/0+$/, "").replace(/\.$/, "") : mant;
      var ae = Math.abs(exp);
      out = mant + "e" + (exp < 0 ? "-" : "+") + (ae < 10 ? "0" : "") + ae;
    }
    return (neg ? "-" : "") + out;
  }

  /* repr(text) for a str. */
  function pyRepr(text) {
    var quote = text.indexOf("'") >= 0 && text.indexOf('"') < 0 ? '"' : "'";
    var out = quote;
    for (var i = 0; i < text.length; i++) {
      var ch = text[i], c = text.charCodeAt(i);
      if (ch === quote || ch === "\\") out += "\\" + ch;
      else if (ch === "\n") out += "\\n";
      else if (ch === "\r") out += "\\r";
      else if (ch === "\t") out += "\\t";
      else if (c < 0x20 || c === 0x7f) out += "\\x" + (c < 16 ? "0" : "") + c.toString(16);
      else out += ch;
    }
    return out + quote;
  }

  /* crossroads.decide.exclusions.fmt_tokens */
  function fmtTokens(volume) {
    var units = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "k"]];
    for (var i = 0; i < units.length; i++) {
      if (volume >= units[i][0]) return fmtG(volume / units[i][0], 3) + units[i][1];
    }
    return fmtG(volume, 3);
  }

  // ------------------------------------------------------------------ cost (cost.py)

  /* Monthly USD at a total monthly volume: tco_cost_curve(entry, input_share)(volume). */
  function costAt(c, volume) {
    var requests = volume / 1000.0;
    var inputPer = 1000.0 * c.input_share;
    var outputPer = 1000.0 * (1.0 - c.input_share);
    var inputPm = requests * inputPer;
    var outputPm = requests * outputPer;
    if (c.kind === "api") {
      var cached = inputPm * 0.0;
      var cachedPrice = c.cached_input !== null && c.cached_input !== undefined ? c.cached_input : c.input;
      var charges = ((inputPm - cached) * c.input + cached * cachedPrice + outputPm * c.output) / 1e6;
      return charges + 0.0 + 0.0 + 0.0;
    }
    // the serving tier that costs least at this volume (tco_cost_curve's min over tiers)
    var best = Infinity;
    for (var i = 0; i < c.tiers.length; i++) {
      var t = c.tiers[i];
      var replicas = Math.max(1, Math.ceil(outputPm / t.replica_capacity - 1e-9));
      var total = replicas * t.replica_month_usd + t.staff + t.setup + 0.0;
      if (total < best) best = total;
    }
    return best;
  }

  function clamp(value) {
    return pyRound(Math.min(10.0, Math.max(0.0, value)), 3);
  }

  function costScore(cost, cheapest) {
    var ratio = Math.max(cost, COST_FLOOR) / Math.max(cheapest, COST_FLOOR);
    return clamp(10.0 - 2.5 * Math.log10(Math.max(ratio, 1.0)));
  }

  /* make_cost_rescorer at a volume: {name: cost per 1M tokens} and the cheapest. */
  function costsPerM(model, volume) {
    var perM = {}, cheapest = Infinity, any = false;
    var cands = model.candidates;
    for (var i = 0; i < cands.length; i++) {
      var cand = cands[i];
      if (!cand.cost) continue;
      var cost = costAt(cand.cost, volume) / volume * 1e6;
      perM[cand.name] = cost;
      any = true;
      if (cost < cheapest) cheapest = cost;
    }
    return { perM: perM, cheapest: cheapest, any: any };
  }

  /* The rescored cost dimension's first evidence line (ranking reasons quote it). */
  function costEvidence(volume, cost) {
    return "cost per 1M tokens at " + fmtTokens(volume) + " tokens/month: $" + fmtG(cost, 4) +
      " ($" + fmtF(cost * volume / 1e6, 2, true) + "/month)";
  }

  // ------------------------------------------------------------------ exclusions.py

  function exclusionReasons(c, cand, scores, monthly) {
    var reasons = [], notes = [];
    if (cand.status === "retired") reasons.push("retired by " + cand.vendor + ": requests fail");
    if (c.on_premises && !cand.self_host) {
      reasons.push("data must stay on premises; " + cand.display + " runs only on " + cand.vendor +
        "'s servers");
    }
    if (c.monthly_budget_usd !== null && c.monthly_budget_usd !== undefined) {
      if (monthly === null || monthly === undefined) {
        notes.push("monthly cost unknown: budget not checked");
      } else if (monthly > c.monthly_budget_usd) {
        reasons.push("$" + fmtF(monthly, 0, true) + "/month at " + fmtTokens(c.volume_tokens_per_month) +
          " tokens/month exceeds the $" + fmtF(c.monthly_budget_usd, 0, true) + " budget");
      }
    }
    var tier = cand.tier;
    if (c.no_ml_engineers && tier !== "api" && !SMALL_TIERS[tier]) {
      reasons.push("no ML engineers: self-hosting needs more than a small single GPU (" + tier + ")");
    }
    if (c.regulated) {
      var control = scores.control, transparency = scores.transparency;
      if (control < 7 || transparency < 5) {
        reasons.push("regulated: needs control >= 7 and transparency >= 5 (has " + fmtG(control) +
          " and " + fmtG(transparency) + ")");
      }
    }
    (c.languages || []).forEach(function (language) {
      var support = cand.language_support[language] || "no";
      if (support === "no" || (support === "claimed" && c.languages_strict)) {
        reasons.push("language " + pyRepr(language) + " not listed in " + pyRepr(cand.languages));
      } else if (support === "claimed") {
        notes.push(language + ": claimed (" + pyRepr(cand.languages) + "), not listed: verify with " +
          "the multilingual suite");
      }
    });
    if (c.p95_latency_s !== null && c.p95_latency_s !== undefined) {
      if (cand.measured && cand.p95_latency_s !== null && cand.p95_latency_s !== undefined) {
        if (cand.p95_latency_s > c.p95_latency_s) {
          reasons.push("measured p95 latency " + fmtF(cand.p95_latency_s, 2) + " s above " +
            fmtG(c.p95_latency_s) + " s");
        }
      } else {
        notes.push("latency not measured: p95 limit not checked");
      }
    }
    return [reasons, notes];
  }

  /* exclusionReasons(...)[0].length > 0, without building the sentences. */
  function isExcluded(c, cand, scores, monthly) {
    if (cand.status === "retired") return true;
    if (c.on_premises && !cand.self_host) return true;
    if (c.monthly_budget_usd !== null && c.monthly_budget_usd !== undefined &&
        monthly !== null && monthly !== undefined && monthly > c.monthly_budget_usd) return true;
    if (c.no_ml_engineers && cand.tier !== "api" && !SMALL_TIERS[cand.tier]) return true;
    if (c.regulated && (scores.control < 7 || scores.transparency < 5)) return true;
    var langs = c.languages || [];
    for (var i = 0; i < langs.length; i++) {
      var support = cand.language_support[langs[i]] || "no";
      if (support === "no" || (support === "claimed" && c.languages_strict)) return true;
    }
    if (c.p95_latency_s !== null && c.p95_latency_s !== undefined && cand.measured &&
        cand.p95_latency_s !== null && cand.p95_latency_s !== undefined &&
        cand.p95_latency_s > c.p95_latency_s) return true;
    return false;
  }

  // ------------------------------------------------------------------ ranking.py

  function dimKeys(model) { return Object.keys(model.dimensions); }

  function weightedScore(keys, scores, weights) {
    var total = fsum(keys.map(function (k) { return weights[k]; }));
    return fsum(keys.map(function (k) { return weights[k] * scores[k]; })) / total;
  }

  function rankingReasons(model, scores, evidence, weights) {
    var keys = dimKeys(model);
    var total = fsum(keys.map(function (k) { return weights[k]; }));
    var parts = keys.filter(function (k) { return weights[k] > 0; });
    parts.sort(function (a, b) {
      var va = -weights[a] * scores[a], vb = -weights[b] * scores[b];
      if (va !== vb) return va < vb ? -1 : 1;
      return a < b ? -1 : a > b ? 1 : 0;
    });
    var out = parts.slice(0, 3).map(function (k) {
      return model.dimensions[k] + " " + fmtF(scores[k], 1) + "/10 (weight " + fmtG(weights[k]) +
        ", " + fmtF(weights[k] * scores[k] / total, 2) + " points): " + evidence[k];
    });
    var weakest = parts[0];
    parts.forEach(function (k) {
      if (scores[k] < scores[weakest] || (scores[k] === scores[weakest] && k < weakest)) weakest = k;
    });
    out.push("weakest: " + model.dimensions[weakest] + " " + fmtF(scores[weakest], 1) + "/10");
    return out;
  }

  /* The candidate's scores with the cost dimension rescored at the volume. */
  function scoresAt(cand, costs) {
    var scores = Object.assign({}, cand.scores);
    if (costs.any && cand.name in costs.perM) {
      scores.cost = costScore(costs.perM[cand.name], costs.cheapest);
    }
    return scores;
  }

  /* rank(profile, candidates, rescore): {ranking: [row], excluded: [{name, label, reasons}]} */
  function rank(model, profile) {
    var c = profile.constraints, weights = profile.weights, keys = dimKeys(model);
    var volume = c.volume_tokens_per_month;
    var costs = costsPerM(model, volume);
    var rows = [], excluded = [];
    model.candidates.forEach(function (cand) {
      var scores = scoresAt(cand, costs);
      var evidence = Object.assign({}, cand.evidence);
      if (costs.any && cand.name in costs.perM) evidence.cost = costEvidence(volume, costs.perM[cand.name]);
      var monthly = cand.cost ? costAt(cand.cost, volume) : cand.monthly_cost_usd;
      var why = exclusionReasons(c, cand, scores, monthly);
      if (why[0].length) {
        excluded.push({ name: cand.name, label: cand.label, reasons: why[0] });
      } else {
        rows.push({
          score: weightedScore(keys, scores, weights), cand: cand, scores: scores,
          evidence: evidence, monthly: monthly, notes: why[1],
        });
      }
    });
    rows.sort(function (a, b) {
      if (a.score !== b.score) return a.score > b.score ? -1 : 1;
      return a.cand.name < b.cand.name ? -1 : a.cand.name > b.cand.name ? 1 : 0;
    });
    return { ranking: rows, excluded: excluded };
  }

  /* top_choice(rank(...)) without sorting or sentences: the first of the ranking. */
  function topOf(model, profile) {
    var c = profile.constraints, weights = profile.weights, keys = dimKeys(model);
    var volume = c.volume_tokens_per_month;
    var costs = costsPerM(model, volume);
    var total = fsum(keys.map(function (k) { return weights[k]; }));
    var best = null, bestScore = -Infinity;
    var cands = model.candidates;
    for (var i = 0; i < cands.length; i++) {
      var cand = cands[i];
      var scores = scoresAt(cand, costs);
      var monthly = cand.cost ? costAt(cand.cost, volume) : cand.monthly_cost_usd;
      if (isExcluded(c, cand, scores, monthly)) continue;
      var score = fsum(keys.map(function (k) { return weights[k] * scores[k]; })) / total;
      if (best === null || score > bestScore || (score === bestScore && cand.name < best.name)) {
        best = cand;
        bestScore = score;
      }
    }
    return best;
  }

  function topChoice(ranked) { return ranked.ranking.length ? ranked.ranking[0].cand : null; }

  function withOverride(profile, key, value) {
    var weights = Object.assign({}, profile.weights);
    var constraints = Object.assign({}, profile.constraints);
    if (key in weights) weights[key] = value; else constraints[key] = value;
    return { name: profile.name, description: profile.description, weights: weights, constraints: constraints };
  }

  // ------------------------------------------------------------------ flips.py

  function weightFlip(model, profile, top, dim, direction, value, limit) {
    var current = profile.weights[dim];
    var name = model.dimensions[dim].toLowerCase();
    var verb = direction === "up" ? "rises" : "falls";
    var newTop = null;
    if (value !== null) {
      var step = 1e-6 * Math.max(1.0, value);
      var probe = direction === "up" ? value + step : Math.max(0.0, value - step);
      newTop = topOf(model, withOverride(profile, dim, probe));
    }
    var base = { kind: "weight", parameter: dim, direction: direction, current: current, searched_to: limit };
    if (value === null || newTop === null || newTop.name === top.name) {
      var how = direction === "up" ? "up to " + fmtG(limit) : "down to 0";
      return Object.assign(base, {
        value: null, new_top: null,
        sentence: "the " + name + " weight can go " + how + " (now " + fmtG(current) +
          ") without changing the top choice",
      });
    }
    return Object.assign(base, {
      value: value, new_top: newTop.name,
      sentence: "if the " + name + " weight " + verb + " from " + fmtG(current) + " to " + fmtG(value, 3) +
        ", " + newTop.label + " becomes the top choice instead of " + top.label,
    });
  }

  function weightFlips(model, profile, ranked) {
    var top = topChoice(ranked);
    if (top === null) return [];
    var weights = profile.weights, keys = dimKeys(model);
    var topScores = ranked.ranking[0].scores;
    var flips = [];
    keys.forEach(function (dim) {
      var current = weights[dim];
      var others = keys.filter(function (k) { return k !== dim; });
      var base = fsum(others.map(function (k) { return weights[k]; }));
      var aTop = fsum(others.map(function (k) { return weights[k] * topScores[k]; }));
      ["up", "down"].forEach(function (direction) {
        var limit = current > 0 ? WEIGHT_RANGE * current : WEIGHT_RANGE;
        limit = direction === "up" ? limit : 0.0;
        var best = null;
        for (var i = 1; i < ranked.ranking.length; i++) {
          var scores = ranked.ranking[i].scores;
          var slope = scores[dim] - topScores[dim];
          if (slope === 0 || (slope > 0) !== (direction === "up")) continue;
          var aI = fsum(others.map(function (k) { return weights[k] * scores[k]; }));
          var x = (aTop - aI) / slope;
          var inside = direction === "up" ? current <= x && x <= limit : limit <= x && x <= current;
          if (inside && base + x > 0 && (best === null || Math.abs(x - current) < Math.abs(best - current))) {
            best = x;
          }
        }
        flips.push(weightFlip(model, profile, top, dim, direction, best, limit));
      });
    });
    return flips;
  }

  function volumeFlips(model, profile, ranked) {
    var top = topChoice(ranked);
    var current = profile.constraints.volume_tokens_per_month;
    if (top === null) return [];
    function topAt(volume) {
      var found = topOf(model, withOverride(profile, "volume_tokens_per_month", volume));
      return found ? found.name : null;
    }
    var flips = [];
    var steps = VOLUME_DECADES * VOLUME_STEPS_PER_DECADE;
    ["up", "down"].forEach(function (direction) {
      var sign = direction === "up" ? 1 : -1;
      var inner = current, found = null, k, volume;
      for (k = 1; k <= steps; k++) {
        volume = current * Math.pow(10, sign * k / VOLUME_STEPS_PER_DECADE);
        if (topAt(volume) !== top.name) { found = volume; break; }
        inner = volume;
      }
      var limit = current * (sign > 0 ? 1000 : 0.001);
      var base = {
        kind: "volume", parameter: "volume_tokens_per_month", direction: direction,
        current: current, searched_to: limit,
      };
      if (found === null) {
        var lo = Math.min(current, limit), hi = Math.max(current, limit);
        flips.push(Object.assign(base, {
          value: null, new_top: null,
          sentence: "from " + fmtTokens(lo) + " to " + fmtTokens(hi) + " tokens/month the top choice stays " +
            top.label,
        }));
        return;
      }
      for (k = 0; k < 60; k++) {
        var mid = Math.sqrt(inner * found);
        if (mid === inner || mid === found) break;
        if (topAt(mid) === top.name) inner = mid; else found = mid;
      }
      var newName = topAt(found);
      var fresh = null;
      model.candidates.forEach(function (c) { if (fresh === null && c.name === newName) fresh = c; });
      var where = sign > 0 ? "above" : "below";
      var what = fresh === null
        ? "no candidate remains: " + top.label + " and every other is excluded"
        : fresh.label + " becomes the top choice instead of " + top.label;
      flips.push(Object.assign(base, {
        value: found, new_top: newName,
        sentence: where + " " + fmtTokens(found) + " tokens/month " + what,
      }));
    });
    return flips;
  }

  // ------------------------------------------------------------------ advisor.py

  /* advise(profile, candidates): the Advice as JSON (score rounded to 4 places, raw_score
   * unrounded), with the flip points unless flipPoints is false. */
  function advise(model, profile, flipPoints) {
    var ranked = rank(model, profile);
    var flips = [];
    if (flipPoints !== false) {
      flips = weightFlips(model, profile, ranked).concat(volumeFlips(model, profile, ranked));
    }
    return {
      profile: profile.name,
      volume_tokens_per_month: profile.constraints.volume_tokens_per_month,
      ranking: ranked.ranking.map(function (row) {
        return {
          name: row.cand.name, label: row.cand.label, kind: row.cand.kind,
          score: pyRound(row.score, 4), raw_score: row.score,
          monthly_cost_usd: row.monthly === undefined ? null : row.monthly,
          scores: row.scores,
          reasons: rankingReasons(model, row.scores, row.evidence, profile.weights),
          notes: row.notes,
        };
      }),
      excluded: ranked.excluded,
      flip_points: flips,
    };
  }

  global.CrossroadsDecide = {
    advise: advise, rank: rank, topOf: topOf, costAt: costAt, fsum: fsum, pyRound: pyRound,
    fmt: { g: fmtG, f: fmtF }, fmtTokens: fmtTokens, pyRepr: pyRepr,
  };
})(window);
