// The dashboard page: one HTML document with its style and script (no external resources, so the
// CSP can forbid everything else). The script keeps the state the server pushes over the WebSocket,
// draws each device's waveform (levels, and the armed window shaded) on a canvas, and sends set /
// pulse commands, and for a board's peripherals press/release/click, clock start/stop and encoder moves. It never polls: all data arrives on the socket.

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 1em 1.5em; color: #1d232a; background: #f6f7f9; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
#conn { font-size: .9em; color: #666; margin-bottom: 1em; }
#conn.live { color: #17803d; }
section.device { background: #fff; border: 1px solid #d5d9de; border-radius: 6px; padding: .8em 1em; margin-bottom: 1.2em; }
section.device h2 { font-size: 1.05em; margin: 0 0 .5em; }
.meta { font-weight: normal; color: #555; font-size: .9em; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 2px 8px; border-bottom: 1px solid #eceff2; white-space: nowrap; }
th { font-size: .8em; color: #555; text-transform: uppercase; }
td.level span { display: inline-block; min-width: 3em; text-align: center; border-radius: 3px; padding: 0 4px; }
td.level span.high { background: #ffd84d; }
td.level span.low { background: #dfe3e8; }
td.state .armed { color: #0b61c4; font-weight: 600; }
td.state .latched { color: #b45309; font-weight: 600; }
button { font: inherit; font-size: .85em; padding: 0 .6em; margin-right: 2px; cursor: pointer; }
input.encoder-position { font: inherit; font-size: .85em; width: 5em; margin-right: 2px; }
td.peripheral { color: #444; }
canvas { display: block; margin-top: .6em; width: 100%; background: #fbfcfd; border: 1px solid #eceff2; }
.tools { margin-top: .4em; font-size: .9em; }
.gone { color: #b91c1c; }
`;

const SCRIPT = String.raw`
'use strict';
var params = new URLSearchParams(location.search);
var token = params.get('token');
var withToken = function (path) { return token ? path + (path.indexOf('?') < 0 ? '?' : '&') + 'token=' + encodeURIComponent(token) : path; };
var WINDOW_S = Number(params.get('window') || 10);
var ROW = 22, LABEL = 110;
var devices = [];
var base = 0n, t0Ms = 0;
var ws = null, nextId = 1;
var nowNs = function () { return base + BigInt(Math.round((performance.now() - t0Ms) * 1e6)); };
var el = function (tag, attrs, text) {
  var e = document.createElement(tag);
  for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
};

function lineState(l) {
  return { line: l.line, name: l.name, direction: l.direction, level: l.level, edge: l.edge, armed: l.armed,
    latched: l.latched, counters: l.counters, button: l.button === true, peripheral: l.peripheral || null,
    wave: [], armedSpans: [] };
}

// A board peripheral on the line, as one line of text (its state comes with the status).
function describePeripheral(p) {
  if (!p) return '-';
  if (p.type === 'button') return 'button ' + p.name + ': ' + (p.pressed ? 'pressed' : 'released');
  if (p.type === 'clock') return 'clock ' + p.name + ': ' + (p.running ? 'running' : 'stopped') + ', ' + p.periodMs + ' ms';
  if (p.type === 'encoder') return 'encoder ' + p.name + ' (' + p.role + '): ' + p.position + (p.target !== p.position ? ' → ' + p.target : '');
  return p.type + ' ' + p.name;
}

function build(msg) {
  base = BigInt(msg.nowNs); t0Ms = performance.now();
  var root = document.getElementById('devices');
  root.textContent = '';
  devices = msg.devices.map(function (d, i) {
    var lines = d.status.lines.map(lineState);
    var sinceNs = BigInt(d.since.timeNs);
    lines.forEach(function (l, j) {
      var s = d.since.lines[j];
      l.wave.push([sinceNs, s.level]);
      if (s.armed) l.armedSpans.push([sinceNs, null]);
    });
    var sec = el('section', { class: 'device', 'data-device': String(i) });
    var h = el('h2', {}, d.label + ' ');
    var meta = el('span', { class: 'meta' });
    h.appendChild(meta); sec.appendChild(h);
    var table = el('table');
    var hr = el('tr');
    ['line', 'name', 'direction', 'level', 'edge', 'irq state', 'edges', 'delivered', 'latched', 'coalesced', 'invalid', 'peripheral', 'drive']
      .forEach(function (c) { hr.appendChild(el('th', {}, c)); });
    table.appendChild(hr);
    var rows = lines.map(function (l) {
      var tr = el('tr', { 'data-device': String(i), 'data-line': String(l.line) });
      var cells = {};
      ['line', 'name', 'direction', 'level', 'edge', 'state', 'edges', 'delivered', 'latched', 'coalesced', 'invalid', 'peripheral', 'drive']
        .forEach(function (c) { cells[c] = el('td', { class: c }); tr.appendChild(cells[c]); });
      [['0', 'set0', 0], ['1', 'set1', 1]].forEach(function (b) {
        var btn = el('button', { class: b[1], title: 'drive the input ' + (b[2] ? 'high' : 'low') }, b[0]);
        btn.onclick = function () { send({ type: 'input', device: i, line: l.line, value: b[2] }); };
        cells.drive.appendChild(btn);
      });
      var p = el('button', { class: 'pulse', title: 'pulse the input for 50 ms' }, 'pulse');
      p.onclick = function () { send({ type: 'pulse', device: i, line: l.line, widthMs: 50 }); };
      cells.drive.appendChild(p);
      // A board button on the line: press, release, click (its bounce included).
      if (l.button)
        ['press', 'release', 'click'].forEach(function (action) {
          var bb = el('button', { class: 'button-' + action, title: action + ' the board button' }, action);
          bb.onclick = function () { send({ type: 'button', device: i, line: l.line, action: action }); };
          cells.drive.appendChild(bb);
        });
      var per = l.peripheral;
      // A board clock: start / stop.
      if (per && per.type === 'clock')
        ['start', 'stop'].forEach(function (action) {
          var cb = el('button', { class: 'clock-' + action, title: action + ' the board clock' }, action);
          cb.onclick = function () { send({ type: 'clock', device: i, line: l.line, action: action }); };
          cells.drive.appendChild(cb);
        });
      // A board encoder (either of its lines): one step back or forward, or to a position typed in.
      if (per && per.type === 'encoder') {
        var turn = function (to) {
          if (!l.peripheral) return;
          l.peripheral.target = to;
          send({ type: 'encoder', device: i, line: l.line, position: to });
        };
        var down = el('button', { class: 'encoder-down', title: 'turn the encoder one step back' }, '−');
        down.onclick = function () { if (l.peripheral) turn(l.peripheral.target - 1); };
        var up = el('button', { class: 'encoder-up', title: 'turn the encoder one step forward' }, '+');
        up.onclick = function () { if (l.peripheral) turn(l.peripheral.target + 1); };
        var pos = el('input', { class: 'encoder-position', type: 'number', step: '1', title: 'encoder position' });
        pos.value = String(per.target);
        var go = el('button', { class: 'encoder-set', title: 'turn the encoder to this position' }, 'set');
        go.onclick = function () {
          var v = Number(pos.value);
          if (pos.value === '' || !Number.isInteger(v)) { document.getElementById('error').textContent = 'the encoder position is an integer'; return; }
          turn(v);
        };
        [down, up, pos, go].forEach(function (e) { cells.drive.appendChild(e); });
        cells.encoderPosition = pos;
      }
      table.appendChild(tr);
      return cells;
    });
    sec.appendChild(table);
    var canvas = el('canvas', { 'data-device': String(i) });
    sec.appendChild(canvas);
    var tools = el('div', { class: 'tools' });
    var a = el('a', { class: 'vcd', href: withToken('/vcd?device=' + i + '&seconds=' + WINDOW_S), download: d.label + '.vcd' },
      'download the last ' + WINDOW_S + ' s as VCD');
    tools.appendChild(a);
    sec.appendChild(tools);
    root.appendChild(sec);
    var dev = { label: d.label, status: d.status, lines: lines, rows: rows, meta: meta, canvas: canvas, gone: null };
    d.events.forEach(function (e) { apply(dev, e); });
    render(dev);
    return dev;
  });
}

function apply(dev, e) {
  if (e.line === undefined) {
    if (e.event === 'connected') dev.status.connected = true;
    if (e.event === 'disconnected') dev.status.connected = false;
    if (e.event === 'features') { dev.status.features = e.features; dev.status.irqNegotiated = e.irq; }
    return;
  }
  var l = dev.lines[e.line];
  if (!l) return;
  var t = BigInt(e.timeNs);
  switch (e.event) {
    case 'output': case 'input': l.level = e.to; l.wave.push([t, e.to]); break;
    case 'direction': l.direction = e.direction; break;
    case 'irq-type': l.edge = e.edge; if (e.edge === 'none') l.latched = false; break;
    case 'armed': l.armed = true; l.armedSpans.push([t, null]); break;
    case 'latched': l.latched = true; break;
    case 'delivered': case 'dropped': case 'invalid':
      if (e.event === 'invalid' && !e.held) break;
      l.armed = false; if (e.event === 'delivered') l.latched = false;
      var last = l.armedSpans[l.armedSpans.length - 1];
      if (last && last[1] === null) last[1] = t;
      break;
  }
}

function render(dev) {
  var s = dev.status;
  dev.meta.textContent = dev.gone ? '— gone: ' + dev.gone :
    '— ' + s.socket + ', ' + s.ngpio + ' lines, front-end ' + (s.connected ? 'connected' : 'not connected') +
    (s.features ? ', features ' + s.features + ', interrupts ' + (s.irqNegotiated ? 'on' : 'off') : '');
  dev.meta.className = dev.gone ? 'meta gone' : 'meta';
  dev.lines.forEach(function (l, j) {
    var c = dev.rows[j];
    c.line.textContent = String(l.line);
    c.name.textContent = l.name || '-';
    c.direction.textContent = l.direction;
    c.level.textContent = '';
    c.level.appendChild(el('span', { class: l.level }, l.level));
    c.edge.textContent = l.edge;
    c.state.textContent = '';
    if (l.armed) c.state.appendChild(el('span', { class: 'armed' }, 'armed '));
    if (l.latched) c.state.appendChild(el('span', { class: 'latched' }, 'latched'));
    if (!l.armed && !l.latched) c.state.textContent = '-';
    ['edges', 'delivered', 'latched', 'coalesced', 'invalid'].forEach(function (k) { c[k].textContent = String(l.counters[k]); });
    c.peripheral.textContent = describePeripheral(l.peripheral);
    if (c.encoderPosition && l.peripheral && document.activeElement !== c.encoderPosition)
      c.encoderPosition.value = String(l.peripheral.target);
    c.drive.querySelectorAll('button, input').forEach(function (b) { b.disabled = l.direction === 'output' || !!dev.gone; });
  });
}

function draw(dev) {
  var c = dev.canvas, n = dev.lines.length;
  var w = c.clientWidth || 800, h = n * ROW + 18;
  var dpr = window.devicePixelRatio || 1;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); c.style.height = h + 'px';
  }
  var g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  var now = nowNs(), span = BigInt(Math.round(WINDOW_S * 1e9)), from = now - span;
  var plot = w - LABEL - 8;
  var x = function (t) { return LABEL + Number(t - from) / Number(span) * plot; };
  g.font = '11px system-ui, sans-serif';
  dev.lines.forEach(function (l, j) {
    var top = j * ROW + 3, hi = top + 3, lo = top + ROW - 6;
    g.fillStyle = '#444';
    g.fillText((l.name || 'gpio' + l.line) + ' (' + l.line + ')', 4, top + ROW / 2 + 3);
    g.fillStyle = 'rgba(11,97,196,0.16)';
    l.armedSpans.forEach(function (sp) {
      var a = x(sp[0] < from ? from : sp[0]), b = x(sp[1] === null ? now : sp[1]);
      if (b > LABEL) g.fillRect(Math.max(a, LABEL), top, b - Math.max(a, LABEL), ROW - 3);
    });
    g.strokeStyle = l.direction === 'output' ? '#c2410c' : '#15803d';
    g.lineWidth = 1.5;
    g.beginPath();
    var prevY = null;
    for (var k = 0; k < l.wave.length; k++) {
      var t = l.wave[k][0], y = l.wave[k][1] === 'high' ? hi : lo;
      var next = k + 1 < l.wave.length ? l.wave[k + 1][0] : now;
      if (next < from) continue;
      var xa = x(t < from ? from : t);
      if (prevY === null) g.moveTo(xa, y); else { g.lineTo(xa, prevY); g.lineTo(xa, y); }
      prevY = y;
    }
    if (prevY !== null) g.lineTo(x(now), prevY);
    g.stroke();
    g.strokeStyle = '#eceff2'; g.lineWidth = 1;
    g.beginPath(); g.moveTo(LABEL, top + ROW - 2); g.lineTo(w, top + ROW - 2); g.stroke();
  });
  g.fillStyle = '#888';
  g.fillText('-' + WINDOW_S + ' s', LABEL, h - 4);
  g.fillText('now', w - 30, h - 4);
  // Forget what scrolled out of the window (keep the last level before it).
  dev.lines.forEach(function (l) {
    while (l.wave.length > 1 && l.wave[1][0] < from) l.wave.shift();
    while (l.armedSpans.length > 0 && l.armedSpans[0][1] !== null && l.armedSpans[0][1] < from) l.armedSpans.shift();
  });
}

function frame() {
  devices.forEach(draw);
  requestAnimationFrame(frame);
}

function send(cmd) {
  if (!ws || ws.readyState !== 1) return;
  cmd.id = nextId++;
  ws.send(JSON.stringify(cmd));
}

function connect() {
  var conn = document.getElementById('conn');
  ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + withToken('/ws?window=' + WINDOW_S));
  ws.onopen = function () { conn.textContent = 'live'; conn.className = 'live'; };
  ws.onclose = function () { conn.textContent = 'disconnected from the daemon dashboard'; conn.className = ''; };
  ws.onmessage = function (m) {
    var msg = JSON.parse(m.data);
    if (msg.type === 'hello') { build(msg); return; }
    var dev = devices[msg.device];
    if (msg.type === 'result') { if (!msg.ok) document.getElementById('error').textContent = msg.error; return; }
    if (!dev) return;
    if (msg.type === 'events') msg.events.forEach(function (e) { apply(dev, e); });
    if (msg.type === 'status') msg.status.lines.forEach(function (sl, j) {
      var l = dev.lines[j]; if (!l) return;
      l.counters = sl.counters; l.direction = sl.direction; l.edge = sl.edge; l.latched = sl.latched;
      l.peripheral = sl.peripheral || null;
    });
    if (msg.type === 'status') { dev.status.connected = msg.status.connected; dev.status.features = msg.status.features; dev.status.irqNegotiated = msg.status.irqNegotiated; }
    if (msg.type === 'gone') dev.gone = msg.error;
    render(dev);
  };
}

connect();
requestAnimationFrame(frame);
`;

export function dashboardPage(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vgpio dashboard</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<h1>vgpio</h1>
<div id="conn">connecting…</div>
<div id="error" class="gone"></div>
<div id="devices"></div>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`;
}
