// SPDX-License-Identifier: MIT
// app.js - the operator console. Every string that comes from a device or the broker is put
// into the page with textContent, never as markup. State changes carry the session's CSRF token.
'use strict';

let csrf = null;

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function api(method, path, body) {
  const opts = { method: method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  if (method !== 'GET' && csrf) opts.headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  return { status: r.status, data: data };
}

function showLogin() {
  $('login-section').hidden = false;
  $('app').hidden = true;
  $('nav').hidden = true;
  $('login-name').focus();
}

async function start() {
  const s = await api('GET', '/api/session');
  if (s.status !== 200) { showLogin(); return; }
  csrf = s.data.csrf;
  $('who').textContent = 'operator: ' + s.data.operator;
  $('login-section').hidden = true;
  $('app').hidden = false;
  $('nav').hidden = false;
  refreshAll();
  $('qr').src = '/api/qr.svg';
  api('GET', '/api/provisioning').then(function (r) {
    if (r.data) $('reg-url').textContent = r.data.url || 'No registration URL configured.';
  });
  const ev = new EventSource('/api/events');
  ev.onmessage = function () { refreshAll(); };
}

function refreshAll() { loadPending(); loadFleet(); loadBroker(); }

function when(t) { return t ? new Date(t * 1000).toLocaleTimeString() : '-'; }

async function loadPending() {
  const r = await api('GET', '/api/pending');
  if (r.status === 401) { showLogin(); return; }
  const box = $('pending');
  box.replaceChildren();
  const joins = (r.data && r.data.joins) || [];
  $('no-pending').hidden = joins.length > 0;
  for (const j of joins) box.appendChild(joinCard(j));
}

function joinCard(j) {
  const card = el('article', null, 'join');
  card.dataset.device = j.device;
  card.appendChild(el('h3', (j.kind === 'hm' ? 'Human-moderated join of ' :
    'Observed join of ') + j.device));
  card.appendChild(el('p', 'Asked at ' + when(j.since)));
  const p = el('p', null);
  p.appendChild(el('span', 'Phrase: '));
  p.appendChild(el('span', j.phrase, 'phrase'));
  card.appendChild(p);
  const h = el('p', null);
  h.appendChild(el('span', 'Hex: '));
  h.appendChild(el('span', j.hex, 'hex'));
  card.appendChild(h);
  if (j.kind !== 'hm') {
    card.appendChild(el('p', 'Beacon ' + j.observer + ': ' + (j.outcome || 'waiting')));
    return card;
  }
  card.appendChild(el('p', 'Which pictograph does the device show? (colour 8x8, and the same ' +
    'choices as mono 12x12 below)'));
  for (const style of ['colour', 'mono']) {
    const row = el('div', null, 'choices ' + style);
    for (let n = 0; n < j.choices; n++) {
      const b = el('button', null, 'choice');
      b.type = 'button';
      b.dataset.choice = String(n);
      b.setAttribute('aria-label', 'Choice ' + (n + 1) + ' (' + style + ')');
      const img = el('img');
      img.src = '/api/pict/' + encodeURIComponent(j.device) + '/' + n + '/' + style;
      img.alt = 'Choice ' + (n + 1) + ', ' + style + ' pictograph';
      b.appendChild(img);
      b.addEventListener('click', function () { decide(j.device, true, n, card); });
      row.appendChild(b);
    }
    card.appendChild(row);
  }
  const refuse = el('button', 'Refuse this join', 'refuse');
  refuse.type = 'button';
  refuse.addEventListener('click', function () { decide(j.device, false, -1, card); });
  card.appendChild(refuse);
  card.appendChild(el('p', '', 'error'));
  return card;
}

async function decide(device, approve, choice, card) {
  const r = approve ? await api('POST', '/api/approve', { device: device, choice: choice })
    : await api('POST', '/api/refuse', { device: device });
  const msg = card.querySelector('.error');
  if (r.status !== 200) {
    msg.textContent = (r.data && r.data.error) || ('refused: HTTP ' + r.status);
    return;
  }
  outcome(device, approve ? 'approve' : 'refuse', r.data.output);
  loadPending();
}

function outcome(device, what, text) {
  const li = el('li', null);
  li.appendChild(el('strong', device + ' ' + what + ': '));
  li.appendChild(el('span', text, 'outcome'));
  $('outcomes').prepend(li);
}

async function loadFleet() {
  const r = await api('GET', '/api/fleet');
  if (r.status !== 200) return;
  const body = $('fleet-table').tBodies[0];
  body.replaceChildren();
  for (const d of r.data.devices) {
    const tr = el('tr');
    tr.dataset.device = d.device;
    tr.appendChild(el('td', d.device, 'device'));
    tr.appendChild(el('td', d.member ? 'yes' : 'no'));
    tr.appendChild(el('td', d.last_type ? d.last_type + ' at ' + when(d.last_time) : '-'));
    tr.appendChild(el('td', d.last_data || '', 'last-data'));
    tr.appendChild(el('td', d.update || '-'));
    const td = el('td');
    const b = el('button', 'Command', null);
    b.type = 'button';
    b.addEventListener('click', function () { $('cmd-device').value = d.device; $('cmd-args').focus(); });
    td.appendChild(b);
    tr.appendChild(td);
    body.appendChild(tr);
  }
  for (const l of r.data.replies || []) {
    if (!document.querySelector('[data-reply="' + CSS.escape(l) + '"]')) {
      const li = el('li', l, 'late');
      li.dataset.reply = l;
      $('outcomes').prepend(li);
    }
  }
}

const COLOURS = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442',
  '#000000'];

async function loadBroker() {
  const r = await api('GET', '/api/broker');
  if (r.status !== 200) return;
  const b = r.data;
  $('broker-status').textContent = b.admin ? 'Counters from $SYS/broker/srup (updated each second).'
    : 'No counters: this server\'s identity is not an admin in the broker\'s policy ' +
      '(add "admin <id>" there to see them).';
  const tb = $('counters').tBodies[0];
  tb.replaceChildren();
  for (const c of b.counters) {
    const tr = el('tr');
    tr.appendChild(el('td', c.name));
    tr.appendChild(el('td', c.value));
    tb.appendChild(tr);
  }
  drawChart(b.samples || []);
  const d = await api('GET', '/api/drops');
  const db = $('drops').tBodies[0];
  db.replaceChildren();
  for (const x of (d.data && d.data.drops) || []) {
    const tr = el('tr');
    for (const k of ['time', 'reason', 'identity', 'topic', 'client_id']) tr.appendChild(el('td', x[k]));
    db.appendChild(tr);
  }
}

function drawChart(samples) {
  const c = $('drops-chart');
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const legend = $('legend');
  legend.replaceChildren();
  if (samples.length < 2) { g.fillText('Waiting for counter samples...', 10, 20); return; }
  // The reasons that dropped anything (the total is the sum: not drawn).
  const reasons = Object.keys(samples[samples.length - 1].drops).filter(function (k) {
    return k !== 'total' && samples[samples.length - 1].drops[k] > 0;
  }).sort();
  if (reasons.length === 0) { g.fillText('No drops so far.', 10, 20); return; }
  let max = 1;
  for (const s of samples) for (const k of reasons) max = Math.max(max, s.drops[k] || 0);
  reasons.forEach(function (k, i) {
    g.strokeStyle = COLOURS[i % COLOURS.length];
    g.lineWidth = 2;
    g.beginPath();
    samples.forEach(function (s, n) {
      const x = 10 + n * (c.width - 20) / (samples.length - 1);
      const y = c.height - 10 - (s.drops[k] || 0) * (c.height - 20) / max;
      if (n === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
    const item = el('span');
    const sw = el('i');
    sw.style.background = COLOURS[i % COLOURS.length];
    item.appendChild(sw);
    item.appendChild(document.createTextNode(k + ' ' + (samples[samples.length - 1].drops[k] || 0)));
    legend.appendChild(item);
  });
}

document.addEventListener('DOMContentLoaded', function () {
  $('login').addEventListener('submit', async function (e) {
    e.preventDefault();
    const r = await api('POST', '/api/login', { name: $('login-name').value,
      password: $('login-password').value });
    if (r.status !== 200) {
      $('login-error').textContent = (r.data && r.data.error) || 'login failed';
      return;
    }
    $('login-password').value = '';
    start();
  });
  $('logout').addEventListener('click', async function () {
    await api('POST', '/api/logout', {});
    location.reload();
  });
  $('command').addEventListener('submit', async function (e) {
    e.preventDefault();
    const dev = $('cmd-device').value.trim();
    const flow = $('cmd-flow').value;
    const args = $('cmd-args').value.trim().split(/\s+/).filter(function (a) { return a; });
    const li = el('li', dev + ' ' + flow + ': sent, waiting for the outcome...');
    $('outcomes').prepend(li);
    const r = await api('POST', '/api/command', { device: dev, flow: flow, args: args });
    li.remove();
    outcome(dev, flow, r.data ? (r.data.output || r.data.error) : ('HTTP ' + r.status));
    loadFleet();
  });
  start();
});
