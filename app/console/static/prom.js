/* The console's arithmetic, with no DOM: the Prometheus text format parsed, counters summed
 * by a label, rates between two snapshots, a quantile from histogram buckets.
 * Loaded by the page as a plain script (window.Prom) and by Node in the unit tests
 * (tests/app/console/test_prom_js.py) as a CommonJS module. */
"use strict";

(function (root) {
  /** Parse Prometheus text exposition (version 0.0.4) into [{name, labels, value}].
   *  Comment lines are skipped; label values are unescaped; a malformed line is skipped. */
  function parse(text) {
    const out = [];
    for (const raw of String(text).split("\n")) {
      const line = raw.trim();
      if (!line || line[0] === "#") continue;
      const sample = parseLine(line);
      if (sample) out.push(sample);
    }
    return out;
  }

  function parseLine(line) {
    let i = 0;
    while (i < line.length && /[A-Za-z0-9_:]/.test(line[i])) i++;
    const name = line.slice(0, i);
    if (!name) return null;
    const labels = {};
    if (line[i] === "{") {
      i++;
      for (;;) {
        while (line[i] === " " || line[i] === ",") i++;
        if (line[i] === "}") { i++; break; }
        const eq = line.indexOf("=", i);
        if (eq < 0 || line[eq + 1] !== '"') return null;
        const key = line.slice(i, eq).trim();
        let j = eq + 2, value = "";
        while (j < line.length && line[j] !== '"') {
          if (line[j] === "\\" && j + 1 < line.length) {
            const next = line[j + 1];
            value += next === "n" ? "\n" : next;
            j += 2;
          } else {
            value += line[j++];
          }
        }
        if (j >= line.length) return null;
        labels[key] = value;
        i = j + 1;
      }
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const value = number(rest[0]);
    if (value === null) return null;
    return { name, labels, value };
  }

  function number(text) {
    if (text === undefined) return null;
    if (text === "+Inf" || text === "Inf") return Infinity;
    if (text === "-Inf") return -Infinity;
    if (text === "NaN") return NaN;
    const v = Number(text);
    return Number.isNaN(v) ? null : v;
  }

  /** The samples named `name` summed per value of `label` ({} when none). */
  function sumBy(samples, name, label) {
    const out = {};
    for (const s of samples) {
      if (s.name !== name) continue;
      const key = s.labels[label] === undefined ? "" : s.labels[label];
      out[key] = (out[key] || 0) + s.value;
    }
    return out;
  }

  /** The samples named `name` summed per combination of `labels`, keyed "a\u0000b". */
  function sumByMany(samples, name, labels) {
    const out = {};
    for (const s of samples) {
      if (s.name !== name) continue;
      const key = labels.map((l) => s.labels[l] === undefined ? "" : s.labels[l]).join("\u0000");
      out[key] = (out[key] || 0) + s.value;
    }
    return out;
  }

  /** The sum of every sample named `name`, or `missing` when there is none. */
  function total(samples, name, missing) {
    let sum = 0, seen = false;
    for (const s of samples) {
      if (s.name === name) { sum += s.value; seen = true; }
    }
    return seen ? sum : (missing === undefined ? 0 : missing);
  }

  /** Per-second rate of each key between two {key: counter} snapshots `seconds` apart;
   *  null when a counter went down (the worker restarted) or `seconds` is not positive. */
  function rates(before, after, seconds) {
    if (!(seconds > 0)) return null;
    const out = {};
    for (const key of Object.keys(after)) {
      const d = after[key] - (before[key] || 0);
      if (d < 0) return null;
      out[key] = d / seconds;
    }
    for (const key of Object.keys(before)) {
      if (!(key in after)) return null;  // a series gone: a restarted worker
    }
    return out;
  }

  /** The sum of an object's values. */
  function sum(obj) {
    let s = 0;
    for (const v of Object.values(obj || {})) s += v;
    return s;
  }

  /** The q-quantile of a histogram's observations between two snapshots of its cumulative
   *  buckets ({le: count}), interpolated linearly inside the bucket (as PromQL's
   *  histogram_quantile does); null with no observation in between. */
  function quantile(q, before, after) {
    const bounds = Object.keys(after).map((le) => [number(le), le]).filter((b) => b[0] !== null)
      .sort((a, b) => a[0] - b[0]);
    if (!bounds.length) return null;
    const counts = bounds.map(([, le]) => after[le] - ((before || {})[le] || 0));
    const n = counts[counts.length - 1];
    if (!(n > 0)) return null;
    const rank = q * n;
    for (let i = 0; i < bounds.length; i++) {
      if (counts[i] >= rank) {
        const upper = bounds[i][0];
        const lower = i === 0 ? 0 : bounds[i - 1][0];
        if (upper === Infinity) return lower;
        const below = i === 0 ? 0 : counts[i - 1];
        const inside = counts[i] - below;
        return inside > 0 ? lower + (upper - lower) * ((rank - below) / inside) : upper;
      }
    }
    return bounds[bounds.length - 1][0];
  }

  const Prom = { parse, sumBy, sumByMany, total, rates, sum, quantile };
  if (typeof module === "object" && module.exports) module.exports = Prom;
  else root.Prom = Prom;
})(typeof globalThis !== "undefined" ? globalThis : this);
