// Electrode figures of the spikevae report: drawn on a canvas from the data that
// spikevae/report/plots.py writes into each <div class="fig">, then kept as a PNG <img>.
// Figures are drawn when their section comes near the screen, all at once before printing
// or with ?draw=all in the address. Layout: a column per unit (waveforms, auto-correlogram,
// amplitude histogram), a row of cross-correlograms, a row of feature scatters.
var SVPlots = (function () {
  'use strict';
  // Unit colours, unsorted grey and quantisation levels: spikevae.report.figures and plots, set by plots.script().
  var PALETTE = SV_PALETTE, UNSORTED = SV_UNSORTED, LEVELS = SV_LEVELS;
  var CELL_W = 216, CELL_H = 154, TOP = 26, PAD = {l: 42, r: 10, t: 18, b: 32};
  var TICK_FONT = '9px sans-serif', LABEL_FONT = '10px sans-serif', TITLE_FONT = '11px sans-serif';

  function colour(k) { return PALETTE[k % PALETTE.length]; }

  function bytes(b64) {
    var s = atob(b64), a = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) { a[i] = s.charCodeAt(i); }
    return a;
  }

  function dequantise(b64, r) {
    var q = bytes(b64), out = new Float64Array(q.length), span = r[1] > r[0] ? r[1] - r[0] : 1;
    for (var i = 0; i < q.length; i++) { out[i] = r[0] + q[i] / LEVELS * span; }
    return out;
  }

  // Up to n + 1 round ticks in [lo, hi] (steps 1, 2, 2.5, 5 x 10^k, as matplotlib's MaxNLocator).
  function ticks(lo, hi, n) {
    var span = hi - lo;
    if (!(span > 0)) { return {values: [lo], step: 1}; }
    var raw = span / n, mag = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10)), step = 10 * mag;
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) { if (steps[i] * mag >= raw * (1 - 1e-9)) { step = steps[i] * mag; break; } }
    var values = [];
    for (var v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
      values.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return {values: values, step: step};
  }

  function tickText(v, step) {
    var d = Math.max(0, -Math.floor(Math.log(step) / Math.LN10 + 1e-9));
    if (Math.abs(step * Math.pow(10, d) - Math.round(step * Math.pow(10, d))) > 1e-6) { d += 1; }
    var s = v.toFixed(d);
    return s.charAt(0) === '-' ? '\u2212' + s.slice(1) : s;
  }

  // One panel: its plotting box inside the cell at (x, y), its data ranges xr, yr.
  function Panel(c, x, y, xr, yr) {
    this.c = c; this.x0 = x + PAD.l; this.y0 = y + PAD.t;
    this.w = CELL_W - PAD.l - PAD.r; this.h = CELL_H - PAD.t - PAD.b;
    this.xr = xr[1] > xr[0] ? xr : [xr[0] - 1, xr[0] + 1];
    this.yr = yr[1] > yr[0] ? yr : [yr[0] - 1, yr[0] + 1];
  }
  Panel.prototype.X = function (v) { return this.x0 + (v - this.xr[0]) / (this.xr[1] - this.xr[0]) * this.w; };
  Panel.prototype.Y = function (v) { return this.y0 + this.h - (v - this.yr[0]) / (this.yr[1] - this.yr[0]) * this.h; };
  Panel.prototype.clip = function () {
    this.c.save(); this.c.beginPath(); this.c.rect(this.x0, this.y0, this.w, this.h); this.c.clip();
  };
  Panel.prototype.unclip = function () { this.c.restore(); };

  // Spines (left, bottom), ticks, tick labels (y labels unless yLabels is false), axis labels, title.
  Panel.prototype.axes = function (title, xlabel, ylabel, yLabels) {
    var c = this.c, x0 = this.x0, y1 = this.y0 + this.h, self = this;
    c.strokeStyle = '#000'; c.lineWidth = 0.8; c.globalAlpha = 1;
    c.beginPath(); c.moveTo(x0, this.y0); c.lineTo(x0, y1); c.lineTo(x0 + this.w, y1); c.stroke();
    c.fillStyle = '#222'; c.font = TICK_FONT;
    var tx = ticks(this.xr[0], this.xr[1], 3);
    c.textAlign = 'center'; c.textBaseline = 'top';
    tx.values.forEach(function (v) {
      var x = self.X(v);
      c.beginPath(); c.moveTo(x, y1); c.lineTo(x, y1 + 3); c.stroke();
      c.fillText(tickText(v, tx.step), x, y1 + 4);
    });
    var ty = ticks(this.yr[0], this.yr[1], 3);
    c.textAlign = 'right'; c.textBaseline = 'middle';
    ty.values.forEach(function (v) {
      var y = self.Y(v);
      c.beginPath(); c.moveTo(x0, y); c.lineTo(x0 - 3, y); c.stroke();
      if (yLabels !== false) { c.fillText(tickText(v, ty.step), x0 - 5, y); }
    });
    c.font = LABEL_FONT; c.textAlign = 'center'; c.textBaseline = 'bottom';
    if (xlabel) { c.fillText(xlabel, x0 + this.w / 2, this.y0 + this.h + PAD.b - 1); }
    if (ylabel) {
      c.save(); c.translate(x0 - PAD.l + 10, this.y0 + this.h / 2); c.rotate(-Math.PI / 2);
      c.textBaseline = 'middle'; c.fillText(ylabel, 0, 0); c.restore();
    }
    c.font = TITLE_FONT; c.textAlign = 'left'; c.textBaseline = 'bottom';
    c.fillText(title, x0 - 4, this.y0 - 4, CELL_W - 8);
  };

  // A polyline through (xs[i], ys[i]).
  function line(p, xs, ys, colour, width) {
    var c = p.c;
    c.strokeStyle = colour; c.lineWidth = width; c.beginPath();
    for (var i = 0; i < ys.length; i++) { if (i) { c.lineTo(p.X(xs[i]), p.Y(ys[i])); } else { c.moveTo(p.X(xs[i]), p.Y(ys[i])); } }
    c.stroke();
  }

  // Filled steps of counts between evenly spaced edges lo..hi.
  function steps(p, counts, lo, hi, colour, alpha) {
    var c = p.c, w = (hi - lo) / counts.length, y0 = p.Y(0);
    c.fillStyle = colour; c.globalAlpha = alpha; c.beginPath(); c.moveTo(p.X(lo), y0);
    for (var k = 0; k < counts.length; k++) {
      c.lineTo(p.X(lo + k * w), p.Y(counts[k])); c.lineTo(p.X(lo + (k + 1) * w), p.Y(counts[k]));
    }
    c.lineTo(p.X(hi), y0); c.closePath(); c.fill(); c.globalAlpha = 1;
  }

  function countRange(counts) {
    var m = 0;
    for (var i = 0; i < counts.length; i++) { m = Math.max(m, counts[i]); }
    return [0, m > 0 ? m * 1.05 : 1];
  }

  function correlogram(p, counts, d) {
    var c = p.c;
    p.clip();
    c.fillStyle = '#d62728'; c.globalAlpha = 0.15;
    c.fillRect(p.X(-d.refractory_ms), p.y0, p.X(d.refractory_ms) - p.X(-d.refractory_ms), p.h);
    c.globalAlpha = 1;
    steps(p, counts, d.edges[0], d.edges[1], p.fill, 0.8);
    p.unclip();
  }

  function waveforms(p, u, d, col) {
    var ns = u.mean.length, c = p.c, xs = new Float64Array(ns);
    for (var i = 0; i < ns; i++) { xs[i] = d.t[0] + (d.t[1] - d.t[0]) * i / Math.max(ns - 1, 1); }
    if (!ns) { return; }
    var tr = dequantise(u.traces, d.wy);
    p.clip();
    c.strokeStyle = col; c.lineWidth = 0.5; c.globalAlpha = 0.15; c.beginPath();
    for (var r = 0; r < u.n_traces; r++) {
      for (var j = 0; j < ns; j++) {
        var x = p.X(xs[j]), y = p.Y(tr[r * ns + j]);
        if (j) { c.lineTo(x, y); } else { c.moveTo(x, y); }
      }
    }
    c.stroke(); c.globalAlpha = 1;
    line(p, xs, u.mean, '#000', 2.2);
    line(p, xs, u.mean, col, 1.3);
    p.unclip();
  }

  function amplitudes(p, a, col, threshold) {
    var c = p.c;
    p.clip();
    steps(p, a.counts, a.lo, a.hi, col, 0.8);
    if (threshold) {
      c.strokeStyle = '#333'; c.lineWidth = 1; c.setLineDash([4, 3]);
      c.beginPath(); c.moveTo(p.X(threshold), p.y0); c.lineTo(p.X(threshold), p.y0 + p.h); c.stroke();
      c.setLineDash([]);
    }
    p.unclip();
  }

  // Points coloured by colour index (0: unsorted, drawn first in grey; k: PALETTE[k - 1]).
  function scatter(p, s, size) {
    var x = dequantise(s.x, s.xr), y = dequantise(s.y, s.yr), ci = bytes(s.c), c = p.c;
    p.clip();
    for (var pass = 0; pass < 2; pass++) {
      for (var i = 0; i < ci.length; i++) {
        if ((ci[i] === 0) !== (pass === 0)) { continue; }
        c.fillStyle = ci[i] === 0 ? UNSORTED : colour(ci[i] - 1);
        c.fillRect(p.X(x[i]) - size / 2, p.Y(y[i]) - size / 2, size, size);
      }
    }
    p.unclip();
  }

  // The canvas of one electrode's figure, ``scale`` device pixels per CSS pixel.
  function draw(d, scale) {
    var W = d.cols * CELL_W, H = TOP + d.rows * CELL_H;
    var cv = document.createElement('canvas');
    cv.width = Math.round(W * scale); cv.height = Math.round(H * scale);
    var c = cv.getContext('2d');
    c.scale(scale, scale);
    c.fillStyle = '#fff'; c.fillRect(0, 0, W, H);
    c.fillStyle = '#000'; c.font = 'bold 13px sans-serif'; c.textAlign = 'left'; c.textBaseline = 'top';
    c.fillText(d.title, 6, 5);
    if (d.more) {
      c.font = LABEL_FONT; c.textAlign = 'right';
      c.fillText('+' + d.more + ' more units (table)', W - 6, 6);
    }
    d.units.forEach(function (u, k) {
      var col = colour(u.k), x = k * CELL_W;
      var p = new Panel(c, x, TOP, d.t, d.wy);
      waveforms(p, u, d, col);
      p.axes(u.title, 'ms', k === 0 ? '\u00b5V' : '', k === 0);
      p = new Panel(c, x, TOP + CELL_H, d.edges, countRange(u.acg.counts));
      p.fill = col; correlogram(p, u.acg.counts, d);
      p.axes(u.acg.title, 'lag (ms)', k === 0 ? 'count' : '');
      p = new Panel(c, x, TOP + 2 * CELL_H, [u.amp.lo, u.amp.hi], countRange(u.amp.counts));
      amplitudes(p, u.amp, col, d.threshold);
      p.axes(u.amp.title, '|amplitude| (\u00b5V)', k === 0 ? 'count' : '');
    });
    d.ccgs.forEach(function (g, k) {
      var p = new Panel(c, k * CELL_W, TOP + 3 * CELL_H, d.edges, countRange(g.counts));
      p.fill = '#555'; correlogram(p, g.counts, d);
      p.axes(g.title, 'lag (ms)', k === 0 ? 'count' : '');
    });
    d.scatters.forEach(function (s, k) {
      var p = new Panel(c, k * CELL_W, TOP + (d.rows - 1) * CELL_H, s.xr, s.yr);
      scatter(p, s, k === d.scatters.length - 1 ? 1.6 : 2.2);
      p.axes(s.title, s.xlabel, s.ylabel);
    });
    return cv;
  }

  // The array overview: per electrode, at its grid cell, the mean waveform of each unit (dashed: not good).
  var OV_W = 120, OV_H = 96;
  function drawOverview(d, scale) {
    var W = d.cols * OV_W, H = d.rows * OV_H + 10;
    var cv = document.createElement('canvas');
    cv.width = Math.round(W * scale); cv.height = Math.round(H * scale);
    var c = cv.getContext('2d');
    c.scale(scale, scale);
    c.fillStyle = '#fff'; c.fillRect(0, 0, W, H);
    d.panels.forEach(function (p) {
      var x0 = p.c * OV_W + 3, y0 = 10 + p.r * OV_H + 14, w = OV_W - 6, h = OV_H - 20;
      c.strokeStyle = '#ccc'; c.lineWidth = 1; c.strokeRect(x0, y0, w, h);
      c.fillStyle = '#222'; c.font = '10px sans-serif'; c.textAlign = 'center'; c.textBaseline = 'bottom';
      c.fillText(p.label, x0 + w / 2, y0 - 2, w);
      if (!p.means.length) {
        c.fillStyle = '#999'; c.font = '9px sans-serif'; c.textBaseline = 'middle';
        c.fillText('no units', x0 + w / 2, y0 + h / 2);
        return;
      }
      var lo = Infinity, hi = -Infinity;
      p.means.forEach(function (m) { m.forEach(function (v) { lo = Math.min(lo, v); hi = Math.max(hi, v); }); });
      var pad = (hi - lo) * 0.05 || 1, panel = {x0: x0, y0: y0, w: w, h: h, xr: d.t, yr: [lo - pad, hi + pad]};
      panel.X = Panel.prototype.X; panel.Y = Panel.prototype.Y;
      var ns = p.means[0].length, xs = [];
      for (var i = 0; i < ns; i++) { xs.push(d.t[0] + (d.t[1] - d.t[0]) * i / Math.max(ns - 1, 1)); }
      p.means.forEach(function (m, k) {
        c.setLineDash(p.good[k] ? [] : [4, 2]);
        panel.c = c; line(panel, xs, m, colour(k), 1.3);
      });
      c.setLineDash([]);
    });
    return cv;
  }

  // Replace the data of one <div class="fig"> by its drawn figure (a PNG <img>).
  function render(div) {
    if (div.getAttribute('data-drawn')) { return; }
    var d = JSON.parse(div.querySelector('script').textContent);
    var scale = Math.min(2, Math.max(1.5, window.devicePixelRatio || 1));
    var cv = d.kind === 'overview' ? drawOverview(d, scale) : draw(d, scale), img = document.createElement('img');
    img.setAttribute('alt', div.getAttribute('data-alt'));
    img.setAttribute('src', cv.toDataURL('image/png'));
    div.appendChild(img);
    div.setAttribute('data-drawn', '1');
  }

  function renderAll() { Array.prototype.forEach.call(document.querySelectorAll('div.fig'), render); }

  // Size each placeholder as its figure will be, so that links to sections land where they should.
  function size(div) {
    var d = JSON.parse(div.querySelector('script').textContent);
    var w = d.kind === 'overview' ? d.cols * OV_W : d.cols * CELL_W;
    var h = d.kind === 'overview' ? d.rows * OV_H + 10 : TOP + d.rows * CELL_H;
    div.style.maxWidth = w + 'px';
    div.style.aspectRatio = w + ' / ' + h;
  }

  function start() {
    var divs = document.querySelectorAll('div.fig');
    Array.prototype.forEach.call(divs, size);
    if (/[?&]draw=all/.test(window.location.search) || !('IntersectionObserver' in window)) {
      renderAll();
    } else {
      var io = new IntersectionObserver(function (entries) {
        entries.forEach(function (e) { if (e.isIntersecting) { io.unobserve(e.target); render(e.target); } });
      }, {rootMargin: '1200px 0px'});
      Array.prototype.forEach.call(divs, function (div) { io.observe(div); });
    }
    window.addEventListener('beforeprint', renderAll);
  }

  return {draw: draw, render: render, renderAll: renderAll, start: start, ticks: ticks};
})();
SVPlots.start();
