// drover dashboard: polls the admin API and draws pools, members, charts and events.
"use strict";
(function () {
  // ?token= opens the page (the only place the API accepts it); API calls send the header.
  const token = new URLSearchParams(location.search).get("token");
  const POLL_MS = 2000;
  const HISTORY_MS = 5000;
  const COLORS = ["#2563eb", "#dc2626", "#16a34a"];
  let lastEvent = 0;
  let history = {};
  // Autoscaler explanations by pool.
  const explains = {};

  function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    // Every write says JSON, with a body or not: the API refuses other types (cross-site guard).
    if (method !== "GET") headers["Content-Type"] = "application/json";
    return fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .then(async (r) => {
        const text = await r.text();
        let data = null;
        try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
        if (!r.ok) {
          const msg = data && data.error ? data.error : r.status + " " + r.statusText;
          throw new Error(msg);
        }
        return data;
      });
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "onclick") e.addEventListener("click", v);
      else if (k === "text") e.textContent = v;
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function showError(msg) {
    const b = document.getElementById("error");
    b.hidden = !msg;
    b.textContent = msg || "";
  }

  function act(promise, what) {
    promise.then(() => { showError(""); refresh(); })
      .catch((e) => showError(what + ": " + e.message));
  }

  // One line chart: series = [{name, values: [number|null]}], over points' ts.
  function chart(title, points, series, unit) {
    const W = 300, H = 110, L = 34, B = 16, T = 6;
    const box = el("div", { class: "chart" });
    const h = el("h3", {}, title);
    series.forEach((s, i) => h.append(el("span", { class: "key", style: "color:" + COLORS[i] }, "— " + s.name)));
    box.append(h);
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
    let max = 0;
    for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
    max = max <= 0 ? 1 : max * 1.15;
    const n = Math.max(points.length, 2);
    const x = (i) => L + (W - L - 4) * (i / (n - 1));
    const y = (v) => T + (H - T - B) * (1 - v / max);
    g.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - 4, y2: H - B }));
    g.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
    const label = (txt, yy) => { const t = svg("text", { x: 2, y: yy }); t.textContent = txt; g.append(t); };
    const fmt = (v) => v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
    label(fmt(max) + unit, T + 8);
    label("0", H - B);
    const secs = points.length > 1 ? Math.round((points[points.length - 1].ts - points[0].ts) / 1000) : 0;
    const span = secs >= 120 ? `last ${Math.round(secs / 60)} min` : secs > 0 ? `last ${secs} s` : "collecting (one point per 5 s)";
    const t = svg("text", { x: L, y: H - 3 }); t.textContent = span; g.append(t);
    series.forEach((s, si) => {
      let d = "";
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        d += (d && s.values[i - 1] !== null ? " L" : " M") + x(i).toFixed(1) + "," + y(v).toFixed(1);
      });
      if (d) g.append(svg("path", { d: d.trim(), fill: "none", stroke: COLORS[si], "stroke-width": 1.6, "vector-effect": "non-scaling-stroke" }));
      // Points without a neighbour would be invisible as a path: mark them.
      s.values.forEach((v, i) => {
        const lone = v !== null && (i === 0 || s.values[i - 1] === null) && (i + 1 >= s.values.length || s.values[i + 1] === null);
        if (lone) g.append(svg("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.2, fill: COLORS[si] }));
      });
    });
    box.append(g);
    return box;
  }

  // The autoscaler's explanation (GET /api/v1/pools/{pool}/autoscale), beside the instances chart.
  function explainBox(x) {
    const box = el("div", { class: "chart explain" }, el("h3", {}, "autoscaler"));
    const line = (k, v) => box.append(el("div", {}, el("span", { class: "muted" }, k + " "), v));
    line("desired", `${x.desired} in [${x.min}, ${x.max}]` + (x.limit ? ` — held back by ${x.limit}` : ""));
    if (x.predictive) {
      line("forecast", x.forecast ? `${x.forecast.value} in ${x.forecast.ahead_s}s (trend ${x.forecast.trend}/interval)` : "not enough history");
    }
    for (const w of x.schedule || []) line("schedule", `"${w.cron}" open until ${w.closes.replace("T", " ").replace("Z", "")}`);
    if (x.warm && x.warm.configured > 0) {
      line("warm", `${x.warm.ready} ready, ${x.warm.starting} starting (of ${x.warm.wanted})` + (x.warm.frozen ? ", frozen" : ""));
    }
    for (const r of x.recommendations || []) line(r.source + " → " + r.instances, el("span", { class: "reason" }, r.why));
    const recent = (x.decisions || []).slice(-5).reverse();
    for (const d of recent) {
      line(d.ts.slice(11, 19), el("span", { class: "reason" }, `${d.from} → ${d.to}: ${d.reason}` + (d.times > 1 ? ` (×${d.times})` : "")));
    }
    return box;
  }

  function charts(name) {
    const pts = history[name] || [];
    const col = (k) => pts.map((p) => (p[k] === undefined ? null : p[k]));
    const box = el("div", { class: "charts" },
      chart("requests/s", pts, [{ name: "rps", values: col("rps") }], ""),
      chart("latency", pts, [{ name: "p50", values: col("p50_ms") }, { name: "p95", values: col("p95_ms") }], " ms"),
      chart("instances", pts, [{ name: "desired", values: col("desired") }, { name: "ready", values: col("ready") }], ""));
    if (explains[name]) box.append(explainBox(explains[name]));
    return box;
  }

  // Effective weight, with the configured one when slow start holds it lower.
  function weightText(m) {
    const eff = m.effective_weight === undefined ? m.weight : m.effective_weight;
    if (m.state !== "healthy" || eff >= m.weight) return String(m.weight);
    return eff.toFixed(2) + " / " + m.weight + " (slow start)";
  }

  function memberRow(pool, m) {
    const path = `/api/v1/pools/${encodeURIComponent(pool.name)}/backends/${encodeURIComponent(m.address)}`;
    const draining = m.state === "draining";
    return el("tr", { "data-address": m.address, "data-state": m.state },
      el("td", {}, m.address, m.managed ? el("span", { class: "muted" }, " (managed)") : ""),
      el("td", {}, el("span", { class: "state " + m.state }, m.state)),
      el("td", { class: "num" }, m.inflight),
      el("td", { class: "num" }, m.requests),
      el("td", { class: "num" }, m.failures),
      el("td", { class: "num" }, m.ewma_ms.toFixed(1)),
      el("td", { class: "num", title: "configured weight " + m.weight }, weightText(m)),
      el("td", { class: "reason" }, m.reason || ""),
      el("td", {},
        el("button", { class: "drain", "data-pool": pool.name, "data-address": m.address, disabled: draining,
          title: "POST " + path + "/drain",
          onclick: () => act(api("POST", path + "/drain"), "drain " + m.address) }, "Drain"), " ",
        el("button", { class: "remove danger", "data-pool": pool.name, "data-address": m.address,
          title: "DELETE " + path,
          onclick: () => { if (confirm(`Drain and remove ${m.address} from ${pool.name}?`)) act(api("DELETE", path), "remove " + m.address); } }, "Remove")));
  }

  function poolCard(p) {
    const head = el("div", { class: "pool-head" },
      el("h2", {}, p.name),
      el("span", { class: "kv" }, "balance ", el("b", {}, p.balance)),
      el("span", { class: "kv" }, "desired ", el("b", { class: "desired" }, p.desired)),
      el("span", { class: "kv" }, "ready ", el("b", { class: "ready" }, p.ready)),
      p.warm && p.warm.configured > 0 ? el("span", { class: "kv" }, "warm ", el("b", { class: "warm" }, p.warm.ready)) : "",
      el("span", { class: "kv" }, "members ", el("b", {}, p.backends.length)),
      el("span", { class: "kv" }, "retries ", el("b", {}, p.retries)));
    if (p.scalable) {
      const input = el("input", { type: "number", min: p.min, max: p.max, value: p.desired, class: "scale-input", "data-pool": p.name });
      head.append(el("span", { class: "scale" }, `instances (${p.min}–${p.max})`, input,
        el("button", { class: "scale-btn", "data-pool": p.name,
          onclick: () => act(api("PUT", `/api/v1/pools/${encodeURIComponent(p.name)}/scale`, { instances: Number(input.value) }), "scale " + p.name) }, "Scale")));
    }
    const table = el("table", { class: "members" },
      el("thead", {}, el("tr", {}, ...["backend", "state", "in flight", "requests", "failures", "ewma ms", "weight", "reason", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...p.backends.map((m) => memberRow(p, m))));
    return el("div", { class: "pool", "data-pool": p.name }, head, charts(p.name), table);
  }

  function renderPools(pools) {
    const root = document.getElementById("pools");
    // Keep a scale input the user is typing in.
    const focused = document.activeElement && document.activeElement.classList.contains("scale-input")
      ? document.activeElement.dataset.pool : null;
    const typed = focused ? document.activeElement.value : null;
    root.replaceChildren(...pools.map(poolCard));
    if (focused) {
      const i = root.querySelector(`.scale-input[data-pool="${CSS.escape(focused)}"]`);
      if (i) { i.value = typed; i.focus(); }
    }
  }

  function addEvents(events) {
    const body = document.querySelector("#events tbody");
    for (const e of events) {
      lastEvent = Math.max(lastEvent, e.id);
      body.prepend(el("tr", { "data-kind": e.kind },
        el("td", {}, e.id), el("td", {}, e.ts.replace("T", " ").replace("Z", "")),
        el("td", {}, e.pool), el("td", {}, e.kind), el("td", {}, e.backend || ""),
        el("td", { class: "reason" }, e.reason)));
    }
    while (body.children.length > 200) body.lastChild.remove();
  }

  // GET /api/v1/routes: match order, each route's target and rate-limit counters.
  function rateText(l) {
    if (!l) return "";
    const ms = l.per_ms;
    const per = ms % 3600000 === 0 ? ms / 3600000 + "h" : ms % 60000 === 0 ? ms / 60000 + "m"
      : ms % 1000 === 0 ? ms / 1000 + "s" : ms + "ms";
    return `${l.requests}/${per}, burst ${l.burst}, by ${l.key}`;
  }

  function renderRoutes(routes) {
    const body = document.querySelector("#routes tbody");
    body.replaceChildren(...routes.map((r) => el("tr", { "data-route": r.name, "data-limited": r.rate_limited },
      el("td", {}, r.name), el("td", {}, r.host || "*"), el("td", {}, r.path_prefix || "/"),
      el("td", {}, (r.methods || []).join(" ")),
      el("td", {}, r.pool ? "pool " + r.pool : "redirect " + (r.redirect || "")),
      el("td", {}, rateText(r.rate_limit)),
      el("td", { class: "num" }, r.rate_limit ? r.rate_limited : ""),
      el("td", { class: "num" }, r.rate_limit ? r.tracked_keys : ""))));
  }

  function refreshExplains(pools) {
    const scaled = pools.filter((p) => p.autoscaled);
    return Promise.all(scaled.map((p) =>
      api("GET", `/api/v1/pools/${encodeURIComponent(p.name)}/autoscale`).then((x) => { explains[p.name] = x; }).catch(() => {})));
  }

  function refresh() {
    return Promise.all([api("GET", "/api/v1/pools"), api("GET", "/api/v1/events?since=" + lastEvent),
      api("GET", "/api/v1/routes")])
      .then(([pools, events, routes]) => refreshExplains(pools).then(() => [pools, events, routes]))
      .then(([pools, events, routes]) => {
        renderPools(pools);
        renderRoutes(routes || []);
        addEvents(events);
        document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
        if (document.getElementById("error").textContent.startsWith("cannot reach")) showError("");
      })
      .catch((e) => showError("cannot reach the admin API: " + e.message));
  }

  function refreshHistory() {
    return api("GET", "/api/v1/history").then((h) => { history = h || {}; }).catch(() => {});
  }

  document.getElementById("reload").addEventListener("click", () => act(api("POST", "/api/v1/reload"), "reload"));
  refreshHistory().then(refresh);
  setInterval(refresh, POLL_MS);
  setInterval(refreshHistory, HISTORY_MS);
})();
