// Status page of the M-Bus gateway. Every URL here is relative, so the page
// works behind Home Assistant's ingress prefix. Data arrives as server-sent
// events ("events"); when the stream fails the page polls "status".
"use strict";

(function () {
  const POLL_MS = 5000;
  const STALE_MS = 30000; // no event for this long: switch to polling

  const $ = (id) => document.getElementById(id);
  const state = { status: null, receivedAt: 0, source: null, pollTimer: 0, staleTimer: 0, cards: new Map() };

  // el builds an element; text is always set as text, never parsed as HTML.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  // ---- formatting -------------------------------------------------------

  const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 6 });
  const integerFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

  function words(s) {
    if (!s) return "";
    const t = String(s).replace(/_/g, " ");
    return t.charAt(0).toUpperCase() + t.slice(1);
  }

  // serverNow estimates the server's clock from the last document.
  function serverNow() {
    if (!state.status) return Date.now();
    return Date.parse(state.status.time) + (Date.now() - state.receivedAt);
  }

  function ago(iso) {
    if (!iso) return "never";
    const s = Math.round((serverNow() - Date.parse(iso)) / 1000);
    return s < 0 ? "in " + span(-s) : span(s) + " ago";
  }

  function span(s) {
    if (s < 5) return "a moment";
    if (s < 90) return s + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    if (s < 129600) return Math.round(s / 3600) + " h";
    return Math.round(s / 86400) + " d";
  }

  function bytes(n) {
    if (n < 10000) return integerFormat.format(n) + " B";
    if (n < 10e6) return numberFormat.format(Math.round(n / 102.4) / 10) + " KiB";
    return numberFormat.format(Math.round(n / 104857.6) / 10) + " MiB";
  }

  function value(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "number") return numberFormat.format(v);
    return String(v);
  }

  // Identifiers are not quantities: shown as the meter sent them, without
  // grouping, with the leading zeros of their BCD digits (the DIF's data
  // field says how many, EN 13757-3 table 4).
  const identifiers = new Set(["fabrication_number", "enhanced_identification", "bus_address",
    "customer", "customer_location", "parameter_set_identification", "model_version",
    "hardware_version", "firmware_version", "software_version", "access_number"]);
  const bcdDigits = { 9: 2, 10: 4, 11: 6, 12: 8, 14: 12 };

  // held notes what Home Assistant shows instead of a total the guard
  // holds back, or that it took a drop as a meter reset.
  function held(g) {
    if (!g) return null;
    const text = g.reason === "reset" ? "meter reset"
      : "held (" + g.reason.replace("_", " ") + "), Home Assistant shows " + value(g.published);
    return el("small", { class: "guard", text: text });
  }

  // isMain tells the values a meter card shows first: the current totals,
  // powers, flows and temperatures. History (storage), tariffs, subunits,
  // maxima and minima, limits, settings and identification are folded.
  const mainQuantity = /^(energy|reactive_energy|apparent_energy|volume|mass|units_for_hca|power|reactive_power|apparent_power|volume_flow|mass_flow|flow_temperature|return_temperature|temperature_difference|external_temperature|voltage|current|pressure|relative_humidity|frequency)(_|$)/;
  function isMain(r) {
    return !r.storage && !r.tariff && !r.subunit && (!r.function || r.function === "instantaneous") &&
      mainQuantity.test(r.quantity || "") && !/_limit|_per_|_duration/.test(r.quantity) && r.value !== null;
  }

  // Dates and times of the meter are its wall clock (no zone): shown in
  // the reader's format without converting them.
  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone: "UTC" });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });
  function meterTime(s) {
    const m = /^(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(:\d{2})?)?$/.exec(s);
    if (!m) return null;
    const d = new Date(s + (m[2] ? "Z" : "T00:00:00Z"));
    if (isNaN(d)) return null;
    return (m[2] ? dateTimeFormat : dateFormat).format(d);
  }

  function recordValue(r) {
    if (typeof r.value === "string") return meterTime(r.value) || r.value;
    if (typeof r.value !== "number" || !identifiers.has(r.quantity)) return value(r.value);
    if (!Number.isSafeInteger(r.value) || r.value < 0) return String(r.value);
    const digits = bcdDigits[parseInt((r.dif || "").slice(0, 2), 16) & 0x0f] || 0;
    return String(r.value).padStart(digits, "0");
  }

  // ---- small DOM helpers ------------------------------------------------

  function setPill(node, text, tone) {
    node.textContent = text || "";
    node.dataset.tone = tone || "";
  }

  function setError(node, msg) {
    node.textContent = msg || "";
    node.hidden = !msg;
  }

  function setFacts(dl, rows) {
    dl.replaceChildren(...rows.filter((r) => r).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  }

  let toastTimer = 0;
  function toast(msg, tone) {
    const t = $("toast");
    t.textContent = msg;
    t.dataset.tone = tone || "";
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) throw new Error((data && data.error) || res.status + " " + res.statusText);
    return data;
  }

  // ---- rendering --------------------------------------------------------

  function render(st) {
    state.status = st;
    state.receivedAt = Date.now();
    draw();
  }

  function draw() {
    const st = state.status;
    renderWarnings(st.warnings || []);
    renderBuses(st.buses && st.buses.length ? st.buses : [st.bus]);
    renderBroker(st.broker);
    renderOutbox(st.outbox);
    renderMeters(st.meters || []);
    renderScan(scanOf(st));
    $("foot").textContent = "Gateway " + (st.versions.gateway || "dev") + " · " + st.versions.go;
  }

  function renderWarnings(list) {
    $("warning-list").replaceChildren(...list.map((w) => el("li", { text: w })));
    $("warnings").hidden = list.length === 0;
  }

  // renderBuses fills the bus card with the first bus and one card per
  // further bus after it, named when there are several; the scan form
  // offers each bus.
  function renderBuses(buses) {
    const several = buses.length > 1;
    let prev = $("bus-card");
    buses.forEach((b, i) => {
      let card = i === 0 ? prev : document.getElementById("bus-card-" + i);
      if (!card) {
        card = el("article", { class: "card", id: "bus-card-" + i },
          el("div", { class: "card-head" }, el("h2"), el("span", { class: "pill" })),
          el("dl", { class: "facts" }),
          el("p", { class: "error", hidden: true }));
        prev.after(card);
      }
      card.querySelector("h2").textContent = several ? "Bus " + b.name : "Bus";
      renderBus(b, card.querySelector(".pill"), card.querySelector("dl"), card.querySelector(".error"));
      prev = card;
    });
    for (let i = buses.length; document.getElementById("bus-card-" + i); i++) document.getElementById("bus-card-" + i).remove();
    const select = $("scan-bus");
    const names = buses.map((b) => b.name || "");
    if (select.dataset.names !== names.join("\n")) {
      const chosen = select.value;
      select.dataset.names = names.join("\n");
      select.replaceChildren(...names.map((n) => el("option", { value: n, text: n || "Bus" })));
      if (names.includes(chosen)) select.value = chosen;
    }
    $("scan-bus-field").hidden = !several;
  }

  // scanOf is the scan of the bus chosen in the scan form.
  function scanOf(st) {
    const name = $("scan-bus").value;
    const b = (st.buses || []).find((x) => (x.name || "") === name);
    return b ? b.scan : st.scan;
  }

  function renderBus(b, pill, facts, error) {
    const tones = { up: ["Up", "ok"], suspect: ["Suspect", "warn"], down: ["Down", "err"], reopening: ["Reopening", "warn"] };
    const [label, tone] = tones[b.state] || [words(b.state), ""];
    setPill(pill, label, tone);
    setFacts(facts, [
      ["Port", b.device || "—"],
      b.baud ? ["Baud rate", integerFormat.format(b.baud)] : null,
      ["Reads", integerFormat.format(b.polls)],
      ["Errors", integerFormat.format(b.errors + linkErrors(b))],
      linkErrors(b) ? ["On the line", linkDetail(b)] : null,
      ["Sent / received", bytes(b.tx_bytes || 0) + " / " + bytes(b.rx_bytes || 0)],
      ["Bus load", Math.round((b.load || 0) * 100) + " %"],
      b.state !== "up" && b.since ? ["Since", ago(b.since)] : null,
      b.retry_at ? ["Next try", ago(b.retry_at)] : null,
    ]);
    setError(error, b.last_error);
  }

  // linkErrors are errors of single answers on the line: timed out,
  // garbled or collided (/status: timeouts, garbled, collisions). The
  // bus's errors (b.errors) are those of the port or converter itself.
  function linkErrors(b) {
    return (b.timeouts || 0) + (b.garbled || 0) + (b.collisions || 0);
  }

  function linkDetail(b) {
    return [[b.timeouts, "timeouts"], [b.garbled, "garbled"], [b.collisions, "collisions"]]
      .filter(([n]) => n > 0).map(([n, what]) => integerFormat.format(n) + " " + what).join(" · ");
  }

  function renderBroker(b) {
    if (!b) {
      setPill($("broker-state"), "Unknown", "");
      setFacts($("broker"), []);
      setError($("broker-error"), "");
      return;
    }
    setPill($("broker-state"), b.connected ? "Connected" : "Disconnected", b.connected ? "ok" : "err");
    setFacts($("broker"), [
      ["Broker", b.broker || "—"],
      b.since ? [b.connected ? "Connected" : "Lost", ago(b.since)] : null,
      ["Published", integerFormat.format(b.published)],
      ["Acknowledged", integerFormat.format(b.delivered)],
    ]);
    setError($("broker-error"), b.last_error);
  }

  function renderOutbox(o) {
    const depth = o.depth === null || o.depth === undefined ? null : o.depth;
    if (o.failing) setPill($("outbox-state"), "Failing", "err");
    else if (depth === 0) setPill($("outbox-state"), "Empty", "ok");
    else if (depth !== null) setPill($("outbox-state"), "Queued", "warn");
    else setPill($("outbox-state"), "", "");
    setFacts($("outbox"), [
      ["Waiting for broker", depth === null ? "unknown" : integerFormat.format(depth)],
      ["Waiting for store", integerFormat.format(o.pending)],
      ["Dropped", integerFormat.format(o.dropped)],
    ]);
    setError($("outbox-error"), o.error || o.last_error);
  }

  function breaker(m) {
    if (!m.enabled) return ["Disabled", ""];
    if (m.breaker === "open") return ["Offline", "err"];
    if (m.breaker === "half_open") return ["Probing", "warn"];
    if (m.failures > 0) return ["Failing", "warn"];
    if (!m.last_success) return ["Waiting", ""];
    return ["Online", "ok"];
  }

  function renderMeters(meters) {
    const box = $("meters");
    $("meter-count").textContent = meters.length ? "(" + meters.length + ")" : "";
    $("no-meters").hidden = meters.length > 0;
    const seen = new Set();
    meters.forEach((m, i) => {
      seen.add(m.id);
      let card = state.cards.get(m.id);
      if (!card) {
        card = meterCard(m.id);
        state.cards.set(m.id, card);
      }
      if (box.children[i] !== card.root) box.insertBefore(card.root, box.children[i] || null);
      updateMeter(card, m);
    });
    for (const [id, card] of state.cards) {
      if (!seen.has(id)) { card.root.remove(); state.cards.delete(id); }
    }
  }

  // meterCard builds the fixed parts of a meter's card once; updates
  // change its contents, so an open telegram view stays open.
  function meterCard(id) {
    const c = {};
    c.name = el("h3", { class: "meter-name" });
    c.sub = el("div", { class: "meter-sub" });
    c.pill = el("span", { class: "pill" });
    c.meta = el("div", { class: "meter-meta" });
    c.error = el("p", { class: "error", hidden: true });
    c.values = el("tbody");
    c.moreValues = el("tbody");
    c.moreLabel = el("summary");
    c.more = el("details", { class: "more" }, c.moreLabel, el("table", { class: "values" }, c.moreValues));
    c.read = el("button", { class: "button read-now", type: "button", text: "Read now", onclick: () => readNow(id, c.name.textContent, c.read) });
    c.raw = el("pre", { class: "raw" });
    c.decoded = el("pre", { class: "decoded" });
    c.copy = el("button", { class: "button copy", type: "button", text: "Copy for bug report", onclick: () => copyTelegram(c) });
    c.details = el("details", { class: "telegram" },
      el("summary", { text: "Last telegram" }),
      el("div", { class: "label", text: "Raw (hex)" }), c.raw,
      el("div", { class: "label", text: "Decoded" }), c.decoded,
      c.copy);
    c.root = el("article", { class: "card meter", id: "meter-" + id, "data-meter": id },
      el("div", { class: "meter-head" }, el("div", null, c.name, c.sub), c.pill),
      c.meta, c.error,
      el("table", { class: "values" }, c.values),
      c.more,
      el("div", { class: "actions" }, c.read),
      c.details);
    return c;
  }

  function updateMeter(c, m) {
    c.name.textContent = m.name || m.id;
    const several = state.status.buses && state.status.buses.length > 1;
    c.sub.textContent = [several && m.bus ? "Bus " + m.bus : null, "Address " + m.address, m.manufacturer, words(m.medium), m.header && m.header.id]
      .filter((x) => x).join(" · ");
    const [label, tone] = breaker(m);
    setPill(c.pill, label, tone);
    const meta = ["Read " + ago(m.last_success)];
    if (m.enabled && state.status.scan && state.status.scan.running) meta.push("reads paused while the bus is scanned");
    if (m.enabled && m.interval_seconds) meta.push("every " + span(m.interval_seconds));
    if (m.failures > 0) meta.push(m.failures + (m.failures === 1 ? " failure" : " failures") + " in a row");
    c.meta.textContent = meta.join(" · ");
    setError(c.error, m.last_error || (m.decode_error ? "Decoding: " + m.decode_error : ""));

    const row = (r) => {
      const detail = r.key !== r.quantity ? words(r.key) : "";
      return el("tr", { "data-key": r.key },
        el("th", null, words(r.quantity || r.key), detail ? el("small", { text: detail }) : null),
        el("td", { class: "num", text: recordValue(r) },
          held(m.guard && m.guard[r.key])),
        el("td", { class: "unit", text: r.unit || "" }));
    };
    const values = m.values || [];
    let main = values.filter(isMain);
    if (!main.length) main = values; // nothing stands out: show it all
    const rest = values.filter((r) => !main.includes(r));
    const rows = main.map(row);
    if (!rows.length) rows.push(el("tr", null, el("td", { class: "no-data", colspan: "3", text: "No values yet." })));
    c.values.replaceChildren(...rows);
    c.moreValues.replaceChildren(...rest.map(row));
    c.more.hidden = rest.length === 0;
    c.moreLabel.textContent = rest.length + (rest.length === 1 ? " more value" : " more values") + " (history, tariffs, diagnostics)";

    const raw = (m.raw || []).join("\n");
    c.details.hidden = !raw && !m.header;
    c.raw.textContent = raw || "—";
    c.decoded.textContent = m.header ? JSON.stringify({ header: m.header, records: m.values }, null, 2) : "—";
  }

  async function readNow(id, name, button) {
    button.disabled = true;
    button.textContent = "Reading…";
    try {
      await post("meters/" + encodeURIComponent(id) + "/read");
      toast("Read " + (name || id) + ".");
      refresh();
    } catch (e) {
      toast("Read failed: " + e.message, "err");
    } finally {
      button.disabled = false;
      button.textContent = "Read now";
    }
  }

  async function copyTelegram(c) {
    const text = "Raw:\n" + c.raw.textContent + "\n\nDecoded:\n" + c.decoded.textContent + "\n";
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
      } else {
        // Plain-http pages have no clipboard API: copy from a hidden text area.
        const ta = el("textarea", { class: "offscreen", readonly: true });
        ta.value = text;
        document.body.append(ta);
        ta.select();
        const ok = document.execCommand("copy");
        ta.remove();
        if (!ok) throw new Error("the browser refused");
      }
      toast("Telegram copied.");
    } catch (e) {
      toast("Copy failed: " + e.message, "err");
    }
  }

  // ---- scan -------------------------------------------------------------

  let foundKey = "";

  function renderScan(sc) {
    const running = !!(sc && sc.running);
    $("scan-start").disabled = running;
    $("scan-mode").disabled = running;
    $("scan-bus").disabled = running;
    $("scan-progress").hidden = !running;
    if (running) {
      const p = sc.progress || {};
      const bar = $("scan-bar");
      if (p.total > 0) {
        bar.max = p.total;
        bar.value = p.done;
        $("scan-text").textContent = p.done + " of " + p.total + " · " + p.found + " found";
      } else {
        bar.removeAttribute("value"); // indeterminate
        $("scan-text").textContent = p.done + " probes · " + p.found + " found";
      }
    }
    const done = !running && sc && sc.finished && sc.progress;
    $("scan-summary").hidden = !done;
    if (done) $("scan-summary").textContent = (sc.found || []).length + " found in " + (sc.progress.probes || 0) + " probes";
    setError($("scan-error"), sc && sc.error);
    const found = (sc && sc.found) || [];
    $("found-wrap").hidden = running || !sc || !sc.finished;
    const key = JSON.stringify(found);
    if (key === foundKey) return;
    foundKey = key;
    const old = new Map();
    for (const input of $("found-rows").querySelectorAll("input")) old.set(input.dataset.address, input.value);
    const rows = found.map((f) => foundRow(f, old.get(f.address)));
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "5", class: "empty", text: "No meters answered." })));
    $("found-rows").replaceChildren(...rows);
  }

  function foundRow(f, name) {
    const meter = [f.manufacturer, f.id].filter((x) => x).join(" ") || (f.collision ? null : "—");
    const addr = f.primary >= 0 && f.secondary ? f.secondary + " (" + f.primary + ")" : f.address;
    const input = el("input", { type: "text", maxlength: "64", placeholder: "Name (optional)", "data-address": f.address, "aria-label": "Name for " + f.address });
    input.value = name || "";
    let act;
    if (f.configured) act = el("span", { class: "pill", "data-tone": "ok", text: "Configured" });
    else {
      act = el("button", { class: "button primary add", type: "button", text: "Add", onclick: () => addMeter(f.address, input, act) });
    }
    return el("tr", { "data-address": f.address },
      el("td", { class: "addr", text: addr }),
      el("td", null, meter, f.collision ? el("div", { class: "pill", "data-tone": "warn", text: "Several meters answer here" }) : null),
      el("td", { text: words(f.medium) || "—" }),
      el("td", { class: "name" }, f.configured ? null : input),
      el("td", { class: "act" }, act));
  }

  async function addMeter(address, input, button) {
    button.disabled = true;
    try {
      await post("meters", { address: address, name: input.value.trim(), bus: $("scan-bus").value });
      toast("Added meter " + (input.value.trim() || address) + ".");
      refresh();
    } catch (e) {
      toast("Adding failed: " + e.message, "err");
      button.disabled = false;
    }
  }

  async function startScan(ev) {
    ev.preventDefault();
    $("scan-start").disabled = true;
    try {
      // The answer may be older than an event already shown: fetch anew.
      await post("scan", { mode: $("scan-mode").value, bus: $("scan-bus").value });
      refresh();
    } catch (e) {
      setError($("scan-error"), e.message);
      $("scan-start").disabled = false;
    }
  }

  // ---- data sources -----------------------------------------------------

  function setLive(s, text) {
    $("live").dataset.state = s;
    $("live-text").textContent = text;
  }

  async function refresh() {
    try {
      const res = await fetch("status", { cache: "no-store" });
      if (!res.ok) throw new Error(res.status + " " + res.statusText);
      render(await res.json());
      if (!state.source) setLive("polling", "Updated " + new Date().toLocaleTimeString());
    } catch (e) {
      setLive("offline", "Gateway unreachable");
    }
  }

  function startPolling() {
    if (state.pollTimer) return;
    refresh();
    state.pollTimer = setInterval(refresh, POLL_MS);
  }

  function stopPolling() {
    clearInterval(state.pollTimer);
    state.pollTimer = 0;
  }

  // watchdog falls back to polling when the stream goes quiet (a proxy may
  // hold events back) and tries the stream again later.
  function watchdog() {
    clearTimeout(state.staleTimer);
    state.staleTimer = setTimeout(() => {
      if (state.source) { state.source.close(); state.source = null; }
      setLive("polling", "Polling");
      startPolling();
      setTimeout(connect, STALE_MS);
    }, STALE_MS);
  }

  function connect() {
    if (!window.EventSource) { startPolling(); return; }
    if (state.source) return;
    const src = new EventSource("events");
    state.source = src;
    src.addEventListener("status", (ev) => {
      stopPolling();
      setLive("live", "Live");
      watchdog();
      render(JSON.parse(ev.data));
    });
    src.addEventListener("error", () => {
      if (src.readyState === EventSource.CLOSED) {
        state.source = null;
        setLive("polling", "Polling");
        startPolling();
        setTimeout(connect, STALE_MS);
      } else {
        setLive("connecting", "Reconnecting…");
        startPolling();
      }
    });
    watchdog();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("scan-form").addEventListener("submit", startScan);
    $("scan-bus").addEventListener("change", () => { if (state.status) draw(); });
    // Ages ("2 min ago") move on between updates.
    setInterval(() => { if (state.status) draw(); }, 10000);
    refresh();
    connect();
  });
})();
