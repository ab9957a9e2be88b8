// The HTML report's hover read-out (inlined into each report; see report/html.py and
// report/charts.py, which writes the data it reads).
// It only reads the page: a JSON block of per-second data, the charts, the tooltip.
(function () {
  "use strict";
  var holder = document.getElementById("nimbus-data");
  var tip = document.getElementById("tip");
  if (!holder || !tip) { return; }
  var data = JSON.parse(holder.textContent);
  var charts = Array.prototype.slice.call(document.querySelectorAll("svg.chart"));
  if (!charts.length || !data.end) { return; }
  function fmtMs(v) {
    if (v === null || v === undefined) { return "–"; }
    return v < 1000 ? (v < 10 ? v.toFixed(2) : v.toFixed(0)) + "ms" : (v / 1000).toFixed(2) + "s";
  }
  function at(list, t) {
    for (var i = 0; i < list.length; i++) {
      if (t >= list[i][1] && t < list[i][2]) { return list[i]; }
    }
    return null;
  }
  // The planned rate at t: runs are [start, end, rate at start, rate at end], straight between.
  function targetAt(t) {
    for (var i = 0; i < data.targets.length; i++) {
      var r = data.targets[i];
      if (t >= r[0] && t < r[1]) {
        return r[1] > r[0] ? r[2] + (r[3] - r[2]) * (t - r[0]) / (r[1] - r[0]) : r[2];
      }
    }
    return null;
  }
  // Replica steps are [start, end, ready, desired]; none after the replica source was lost.
  function replicasAt(t) {
    for (var i = 0; i < data.replicas.length; i++) {
      var r = data.replicas[i];
      if (t >= r[0] && (t < r[1] || (i === data.replicas.length - 1 && t <= r[1]))) { return r; }
    }
    return null;
  }
  // Steps are [start, end, ...values]; the last one holds at its end too.
  function stepAt(list, t) {
    for (var i = 0; i < list.length; i++) {
      var r = list[i];
      if (t >= r[0] && (t < r[1] || (i === list.length - 1 && t <= r[1]))) { return r; }
    }
    return null;
  }
  function fmtValue(v) {
    if (v === null || v === undefined) { return "–"; }
    return Math.abs(v) >= 100 ? v.toFixed(0) : String(Math.round(v * 100) / 100);
  }
  function line(text, cls) {
    var div = document.createElement("div");
    if (cls) { div.className = cls; }
    div.textContent = text;
    return div;
  }
  function hide() {
    tip.style.visibility = "hidden";
    charts.forEach(function (c) {
      var cur = c.querySelector(".cursor");
      if (cur) { cur.setAttribute("visibility", "hidden"); }
    });
  }
  function show(ev, svg) {
    var box = svg.getBoundingClientRect();
    var x = (ev.clientX - box.left) * (data.width / box.width);
    if (x < data.left || x > data.left + data.plot) { hide(); return; }
    var t = (x - data.left) / data.plot * data.end;
    var sec = Math.floor(t);
    charts.forEach(function (c) {
      var cur = c.querySelector(".cursor");
      if (cur) {
        cur.setAttribute("x1", x); cur.setAttribute("x2", x);
        cur.setAttribute("visibility", "visible");
      }
    });
    var phase = at(data.phases, t);
    var target = targetAt(t);
    var s = data.seconds[String(sec)];
    var rows = [line("+" + t.toFixed(1) + "s" + (phase ? " · " + phase[0] : ""), "th")];
    var tr = target !== null ? target.toFixed(1) : "–";
    if (s) {
      rows.push(line("target " + tr + "/s · scheduled " + s[0] + " · sent " + s[1]));
      rows.push(line("p50 " + fmtMs(s[4]) + " · p95 " + fmtMs(s[5]) +
        " · p99 " + fmtMs(s[6])));
      rows.push(line("failed " + s[2] + " · dropped " + s[3]));
      // Each template's p95 this second, when the page has the per-request chart.
      var byRequest = (data.requests || []).filter(function (r) {
        return r[1][String(sec)] !== undefined && r[1][String(sec)] !== null;
      }).map(function (r) { return r[0] + " " + fmtMs(r[1][String(sec)]); });
      if (byRequest.length) { rows.push(line("p95 by request: " + byRequest.join(" · "))); }
    } else {
      rows.push(line("target " + tr + "/s (no requests this second)"));
    }
    var r = replicasAt(t);
    if (r) { rows.push(line("replicas " + r[2] + " ready / " + r[3] + " desired")); }
    // The scaling section's: the autoscaler's decision and each metric against its target.
    var a = stepAt(data.autoscaler || [], t);
    if (a) { rows.push(line("autoscaler desired " + a[2])); }
    (data.metrics || []).forEach(function (m) {
      var step = stepAt(m[2], t);
      if (step) {
        rows.push(line(m[0] + " " + fmtValue(step[2]) + " / target " + fmtValue(step[3]) +
          " (" + m[1] + ")"));
      }
    });
    tip.replaceChildren.apply(tip, rows);
    tip.style.visibility = "visible";
    var left = ev.clientX + 14;
    if (left + tip.offsetWidth > window.innerWidth - 8) { left = ev.clientX - tip.offsetWidth - 14; }
    tip.style.left = left + "px";
    tip.style.top = Math.max(ev.clientY - tip.offsetHeight - 10, 8) + "px";
  }
  charts.forEach(function (svg) {
    svg.addEventListener("mousemove", function (ev) { show(ev, svg); });
    svg.addEventListener("mouseleave", hide);
  });
})();
