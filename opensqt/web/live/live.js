// The OpenSQT live page: one WebSocket (/ws, protocol in docs/live.md), a lightweight-charts chart
// (candles + volume, open orders as dashed price lines, fills as markers) and a HUD.  Bundled by esbuild
// (`make live-page`); no CDN.  State for the browser tests is exposed on window.__live (read-only).
import {
  createChart,
  CandlestickSeries,
  HistogramSeries,
  LineStyle,
  createSeriesMarkers,
} from "lightweight-charts";

const $ = (id) => document.getElementById(id);
const UP = "#22c55e";
const DOWN = "#ef4444";
const MAX_MARKERS = 50;

const state = {
  connected: false,
  connects: 0,
  history: 0,
  lines: new Map(), // order id -> { line, order }
  markers: [],
  markerKeys: new Set(),
  buys: 0,
  sells: 0,
  pnl: null,
  muted: true,
  messages: 0,
  arb: new Map(), // spot symbol -> the pair's last `arb` message
};

const chart = createChart($("chart"), {
  autoSize: true,
  layout: { background: { color: "#0b0e11" }, textColor: "#d1d4dc" },
  grid: { vertLines: { color: "#151a21" }, horzLines: { color: "#151a21" } },
  timeScale: { timeVisible: true, secondsVisible: false, rightOffset: 6 },
  rightPriceScale: { borderColor: "#222a35" },
});
const candles = chart.addSeries(CandlestickSeries, {
  upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
  // keep every open order's price line on screen: the price scale covers them as well as the candles
  autoscaleInfoProvider: (original) => {
    const res = original();
    if (res === null || state.lines.size === 0) return res;
    const prices = [...state.lines.values()].map((l) => num(l.order.price));
    res.priceRange.minValue = Math.min(res.priceRange.minValue, ...prices);
    res.priceRange.maxValue = Math.max(res.priceRange.maxValue, ...prices);
    return res;
  },
});
// volume sits in the bottom fifth on its own hidden scale; its last value would sit on the price axis
const volume = chart.addSeries(HistogramSeries, {
  priceFormat: { type: "volume" }, priceScaleId: "", lastValueVisible: false, priceLineVisible: false,
});
volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
const markerLayer = createSeriesMarkers(candles, []);

window.__live = {
  get connected() { return state.connected; },
  get connects() { return state.connects; },
  get history() { return state.history; },
  get priceLines() { return [...state.lines.values()].map((l) => ({ id: l.order.id, price: l.order.price, side: l.order.side })); },
  get markers() { return state.markers.map((m) => ({ time: m.time, text: m.text })); },
  get pnl() { return state.pnl; },
  get messages() { return state.messages; },
  get arb() { return [...state.arb.values()].map((a) => ({ ...a })); },
};

// ------------------------------------------------------------------ formatting
const num = (s) => Number.parseFloat(s);
function fmt(s, digits = 2) {
  const n = num(s);
  return Number.isFinite(n) ? n.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: Math.max(digits, 8) }) : "—";
}
function signed(el, s) {
  el.textContent = fmt(s);
  el.classList.toggle("pos", num(s) > 0);
  el.classList.toggle("neg", num(s) < 0);
}

// ------------------------------------------------------------------ chart updates
function bar(c) {
  return { time: Number(c.time), open: num(c.open), high: num(c.high), low: num(c.low), close: num(c.close) };
}
function vol(c) {
  return { time: Number(c.time), value: num(c.volume), color: num(c.close) >= num(c.open) ? "#26a69a" : "#ef5350" };
}

function onHistory(list) {
  candles.setData(list.map(bar));
  volume.setData(list.map(vol));
  state.history = list.length;
  chart.timeScale().fitContent();
}

function onKline(c) {
  candles.update(bar(c));
  volume.update(vol(c));
}

function onOrder(o) {
  const prev = state.lines.get(o.id);
  if (prev) {
    candles.removePriceLine(prev.line);
    state.lines.delete(o.id);
  }
  if (o.status === "NEW" || o.status === "PARTIALLY_FILLED") {
    const buy = o.side === "BUY";
    const line = candles.createPriceLine({
      price: num(o.price), color: buy ? UP : DOWN, lineWidth: 2, lineStyle: LineStyle.Dashed,
      axisLabelVisible: true, title: buy ? "buy" : "sell",
    });
    state.lines.set(o.id, { line, order: o });
  }
}

function onOrders(data) {
  if (Array.isArray(data)) {
    // an array is the snapshot: it replaces every line (after a reconnect the old ones are stale)
    for (const { line } of state.lines.values()) candles.removePriceLine(line);
    state.lines.clear();
    data.forEach(onOrder);
  } else {
    onOrder(data);
  }
  renderOrders();
}

function renderOrders() {
  const rows = [...state.lines.values()].map((l) => l.order).sort((a, b) => num(b.price) - num(a.price));
  $("norders").textContent = String(rows.length);
  $("orders").replaceChildren(...rows.map((o) => {
    const li = document.createElement("li");
    li.className = o.side === "BUY" ? "buy" : "sell";
    li.innerHTML = `<b></b><span></span>`;
    li.firstChild.textContent = `${o.side} ${fmt(o.price)}`;
    li.lastChild.textContent = o.quantity ?? "";
    return li;
  }));
}

function onTrade(t) {
  const key = `${t.time}|${t.side}|${t.price}|${t.amount}`;
  if (state.markerKeys.has(key)) return; // replayed by the snapshot after a reconnect
  state.markerKeys.add(key);
  if (state.markerKeys.size > 500) {
    // a day of fills must not grow memory: the server replays at most its last 50, so 500 keys suffice
    state.markerKeys.delete(state.markerKeys.values().next().value);
  }
  const buy = t.side === "buy";
  if (buy) state.buys += 1; else state.sells += 1;
  $("counts").textContent = `${state.buys} / ${state.sells}`;
  state.markers.push({
    time: Math.floor(Number(t.time) / 60) * 60,
    position: buy ? "belowBar" : "aboveBar",
    color: buy ? UP : DOWN,
    shape: buy ? "arrowUp" : "arrowDown",
    text: `${buy ? "B" : "S"} ${fmt(t.price)}`,
    size: 1,
  });
  state.markers.sort((a, b) => a.time - b.time);
  if (state.markers.length > MAX_MARKERS) state.markers.splice(0, state.markers.length - MAX_MARKERS);
  markerLayer.setMarkers(state.markers);
  if (Date.now() / 1000 - Number(t.time) < 10) {
    ding(buy);
    floatUp(`${buy ? "bought" : "sold"} ${fmt(t.price)}`, buy ? UP : DOWN);
  }
}

function floatUp(text, color) {
  const el = document.createElement("div");
  el.className = "float";
  el.textContent = text;
  el.style.color = color;
  el.style.left = "50%";
  el.style.top = "40%";
  document.body.append(el);
  setTimeout(() => el.remove(), 2000);
}

// ------------------------------------------------------------------ HUD
function onAccount(a) {
  $("balance").textContent = `${fmt(a.balance || a.marginBalance || a.free)} ${a.asset}`;
  if (a.symbol) $("symbol").textContent = a.symbol;
}
function onPosition(p) {
  $("symbol").textContent = p.symbol;
  $("position").textContent = `${fmt(p.amount, 4)} @ ${fmt(p.entryPrice)}`;
  if (p.realizedPnL !== undefined) {
    state.pnl = p.realizedPnL;
    signed($("pnl"), p.realizedPnL);
  }
  signed($("upnl"), p.unrealizedPnL);
}
function onRisk(r) {
  const el = $("risk");
  el.hidden = r.type === "ok";
  el.className = `risk ${r.severity}`;
  el.textContent = r.message;
}
function onSlots(s) {
  $("slotcounts").textContent = Object.entries(s.counts).map(([k, v]) => `${k.toLowerCase()} ${v}`).join(" · ");
  $("slots").replaceChildren(...s.slots.map((row) => {
    const d = document.createElement("div");
    d.className = `slot ${row.state}${num(row.position) !== 0 ? " held" : ""}`;
    d.title = `${fmt(row.price)} ${row.state} ${row.side} pos ${row.position}`;
    return d;
  }));
}

// One row per arbitrage pair (opensqt arb): pair, direction, size (spot / perp), funding PnL, state.
function onArb(a) {
  state.arb.set(a.symbol, a);
  const rows = [...state.arb.values()];
  $("arbpanel").hidden = false;
  $("narb").textContent = String(rows.filter((r) => r.state !== "flat").length);
  $("arb").tBodies[0].replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    tr.className = r.state;
    tr.dataset.symbol = r.symbol;
    const held = num(r.spotQty) !== 0 || num(r.perpQty) !== 0;
    // size: the spot leg; the perp leg too when it differs (dust, or a half-closed exit)
    const size = num(r.spotQty) === num(r.perpQty) ? fmt(r.spotQty, 4) : `${fmt(r.spotQty, 4)} / ${fmt(r.perpQty, 4)}`;
    const cells = [
      r.symbol,
      r.direction === "positive" ? "+" : r.direction === "negative" ? "−" : "",
      held ? size : "—",
      null,
      null,
    ];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      if (i === 3) signed(td, r.fundingPnL);
      else if (i === 4) {
        const b = document.createElement("span");
        b.className = `state ${r.state}`;
        b.textContent = r.state;
        td.append(b);
      } else td.textContent = text;
      tr.append(td);
    });
    tr.title = `${r.perp} · spot ${r.spotQty} perp ${r.perpQty} · apr ${r.apr || "?"} · basis ${r.basis || "?"} · trading PnL ${r.tradingPnL}`;
    return tr;
  }));
}

// ------------------------------------------------------------------ sound (starts muted)
let audio = null;
function ding(buy) {
  if (state.muted) return;
  audio ??= new AudioContext();
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.type = "triangle";
  osc.frequency.setValueAtTime(buy ? 880 : 1320, audio.currentTime);
  osc.frequency.exponentialRampToValueAtTime(buy ? 1320 : 1760, audio.currentTime + 0.08);
  gain.gain.setValueAtTime(0.25, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.35);
  osc.connect(gain).connect(audio.destination);
  osc.start();
  osc.stop(audio.currentTime + 0.4);
}
$("mute").addEventListener("click", () => {
  state.muted = !state.muted;
  $("mute").textContent = state.muted ? "♪ off" : "♪ on";
  $("mute").setAttribute("aria-pressed", String(!state.muted));
});

// ------------------------------------------------------------------ connection, reconnect with backoff
const HANDLERS = {
  history: onHistory, kline: onKline, orders: onOrders, trade_event: onTrade,
  account: onAccount, position: onPosition, risk_status: onRisk, slots: onSlots, arb: onArb,
};
let attempt = 0;
function wsUrl() {
  const here = new URL(window.location.href);
  const url = new URL("/ws", here);
  url.protocol = here.protocol === "https:" ? "wss:" : "ws:";
  const token = here.searchParams.get("token");
  if (token) url.searchParams.set("token", token);
  return url.toString();
}
function setConn(on, text) {
  state.connected = on;
  $("conn").textContent = text;
  $("conn").classList.toggle("on", on);
  $("conn").classList.toggle("off", !on);
}
function connect() {
  const ws = new WebSocket(wsUrl());
  ws.onopen = () => { attempt = 0; state.connects += 1; setConn(true, "live"); };
  ws.onmessage = (ev) => {
    state.messages += 1;
    const msg = JSON.parse(ev.data);
    const handler = HANDLERS[msg.type];
    if (handler) handler(msg.data);
  };
  ws.onclose = () => {
    setConn(false, "reconnecting");
    // jittered exponential backoff: 0.5 s, 1 s, 2 s ... 10 s
    const delay = Math.min(10000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt += 1;
    setTimeout(connect, delay);
  };
}
connect();
