"""The report page's policy, style and script, inline (the page references nothing else).

The script renders from the page's JSON with ``textContent`` only (names and notes are free
text, never parsed as HTML) and pages every table, so a long history opens quickly.
"""

from __future__ import annotations

#: Nothing may be fetched: no script, style, font, image (but data:), frame or connection.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;
background:#fafbfc}
header{padding:12px 20px;background:#263238;color:#eceff1;display:flex;flex-wrap:wrap;
align-items:center;gap:8px 20px}
header h1{font-size:18px;margin:0}
header p{margin:0;color:#b0bec5}
.filter input{margin-left:6px;padding:4px 8px;width:22em;border-radius:4px;border:1px solid #90a4ae}
#matches{color:#ffe082}
main{display:flex;gap:0;min-height:420px;max-height:78vh;border-bottom:1px solid #cfd8dc}
#graph-pane{flex:1 1 65%;display:flex;flex-direction:column;min-width:0}
.toolbar{padding:6px 10px;border-bottom:1px solid #cfd8dc;background:#fff;display:flex;gap:6px;
align-items:center;flex-wrap:wrap}
.toolbar button{min-width:2.2em}
.legend i{display:inline-block;width:12px;height:12px;border:1px solid #777;margin:0 4px 0 12px;
vertical-align:-1px;border-radius:3px}
.legend .consumable{background:#c8e6c9}.legend .intermediate{background:#fff3c4}
.legend .initial{background:#eceff1}.legend .refused{background:#ffcdd2}
.legend .run{background:#e3f2fd;border-radius:6px}.legend .decision{background:#f3e5f5;
border-radius:6px}
#graph{overflow:auto;flex:1;background:#fff}
#graph svg{display:block}
.node{cursor:pointer}
.node:focus{outline:none}
.node.selected rect{stroke:#d81b60;stroke-width:3}
.node.dim,.edge.dim,.edge-label.dim{opacity:.15}
#details{flex:1 1 35%;overflow:auto;padding:10px 16px;border-left:1px solid #cfd8dc;background:#fff;
min-width:300px}
#details h2{font-size:16px;margin:4px 0 8px}
#details h3{font-size:14px;margin:14px 0 4px}
.hint{color:#607d8b}
dl.props{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:0}
dl.props dt{color:#607d8b}dl.props dd{margin:0;word-break:break-all}
.verdict.ok{color:#2e7d32;font-weight:bold}.verdict.bad{color:#c62828;font-weight:bold}
ul.checks{list-style:none;padding-left:0;margin:4px 0}ul.checks li.fail{color:#c62828}
ul.checks li.pass{color:#2e7d32}ul.checks li.pass::before{content:"\\2713  "}
ul.checks li.fail::before{content:"\\2717  "}
pre{background:#f5f7f8;padding:6px;overflow:auto;max-height:14em;margin:4px 0}
table{border-collapse:collapse;width:100%;margin:4px 0}
th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eceff1;vertical-align:top}
th{background:#f5f7f8;font-weight:600}
td.mono,dd.mono,span.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
#artefacts{padding:10px 20px}
#artefacts section{margin:10px 0 24px}
#artefacts h3{margin:6px 0}
.pager{display:flex;gap:8px;align-items:center;margin:4px 0;color:#607d8b}
a.link{color:#1565c0;cursor:pointer;text-decoration:underline}
.state{padding:0 6px;border-radius:8px;border:1px solid #b0bec5}
.state.consumable{background:#c8e6c9}.state.intermediate{background:#fff3c4}
.state.initial{background:#eceff1}.state.refused{background:#ffcdd2}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = 25;
  var byId = {};
  data.versions.forEach(function (v) { byId[v.id] = v; });
  data.activities.forEach(function (a) { byId[a.id] = a; });
  var svg = document.getElementById("lineage");
  var details = document.getElementById("details");
  var selected = null;
  var query = "";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") { node.textContent = attrs[k]; }
        else if (k === "onclick") { node.addEventListener("click", attrs[k]); }
        else { node.setAttribute(k, attrs[k]); }
      });
    }
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  function short(cid) { return cid && cid.length > 16 ? cid.slice(0, 8) + "\u2026" + cid.slice(-6) : cid; }
  function isVersion(n) { return n.id.charAt(0) === "v"; }
  function label(n) {
    return isVersion(n) ? n.artefact + " #" + n.number : (n.type + " " + n.name);
  }
  function link(id) {
    var n = byId[id];
    return el("a", {"class": "link", text: n ? label(n) : id, onclick: function () { select(id, true); }});
  }
  function linkList(ids) {
    var span = el("span");
    if (!ids.length) { span.textContent = "\u2014"; }
    ids.forEach(function (id, i) { if (i) { span.appendChild(document.createTextNode(", ")); } span.appendChild(link(id)); });
    return span;
  }
  function props(pairs) {
    var dl = el("dl", {"class": "props"});
    pairs.forEach(function (p) {
      dl.appendChild(el("dt", {text: p[0]}));
      var dd = el("dd", p[2] ? {"class": "mono"} : null);
      if (typeof p[1] === "string") { dd.textContent = p[1]; } else { dd.appendChild(p[1]); }
      dl.appendChild(dd);
    });
    return dl;
  }
  function hay(n) {
    if (n._hay) { return n._hay; }
    var parts = [n.id, n.artefact, n.kind, n.state, n.cid, n.sha256, n.name, n.type, n.actor,
      n.record_cid, n.tx_hash];
    (n.steps || []).forEach(function (s) {
      parts.push(s.actor, s.action, s.by, s.note, s.tx_hash, s.record_cid, (s.roles || []).join(" "));
    });
    n._hay = parts.filter(Boolean).join(" ").toLowerCase();
    return n._hay;
  }
  function matches(n) { return !query || hay(n).indexOf(query) >= 0; }

  function stepsTable(steps, withVersion) {
    var head = ["when", "change", "who", "role", "by", "note", "transaction"];
    if (withVersion) { head.splice(1, 0, "version"); }
    var table = el("table", {"class": "timeline"}, [el("thead", null, [el("tr", null, head.map(function (h) { return el("th", {text: h}); }))])]);
    var body = el("tbody");
    steps.forEach(function (s) {
      var cells = [
        el("td", {text: s.time.replace("T", " ").replace("Z", " UTC")}),
        el("td", {text: s.action + ": " + (s.from || "\u2205") + " \u2192 " + s.to}),
        el("td", {"class": "mono", text: s.actor}),
        el("td", {text: (s.roles || []).join(", ")}),
        el("td", {text: s.by || ""}),
        el("td", {text: s.note || ""}),
        el("td", {"class": "mono", title: s.tx_hash, text: short(s.tx_hash) + " (block " + s.block + ")"})
      ];
      if (withVersion) { cells.splice(1, 0, el("td", null, [link(s.version)])); }
      body.appendChild(el("tr", null, cells));
    });
    table.appendChild(body);
    return table;
  }

  function showVersion(v) {
    details.textContent = "";
    details.appendChild(el("h2", {text: v.artefact + " #" + v.number}));
    details.appendChild(props([
      ["state", el("span", {"class": "state " + v.category, text: v.state})],
      ["kind", v.kind], ["CID", v.cid, true], ["sha256", v.sha256, true],
      ["inputs", linkList(v.inputs)], ["used by", linkList(v.used_by)]
    ]));
    var verdict = v.verdict;
    details.appendChild(el("h3", null, ["Gate: ", el("span", {"class": "verdict " + (verdict.verified ? "ok" : "bad"), text: verdict.verified ? "verified" : "NOT verified"})]));
    var checks = el("ul", {"class": "checks"});
    verdict.checked.forEach(function (c) { checks.appendChild(el("li", {"class": "pass", text: c})); });
    verdict.reasons.forEach(function (c) { checks.appendChild(el("li", {"class": "fail", text: c})); });
    details.appendChild(checks);
    details.appendChild(el("h3", {text: "Params and metrics"}));
    if (!v.files.length) { details.appendChild(el("p", {"class": "hint", text: "none recorded"})); }
    v.files.forEach(function (f) {
      var head = f.what + " of step " + f.step + " (" + f.via + ")";
      if (f.values) {
        details.appendChild(el("div", null, [el("strong", {text: head})]));
        details.appendChild(el("pre", {text: JSON.stringify(f.values, null, 2)}));
        return;
      }
      details.appendChild(el("div", null, [el("strong", {text: head + ": " + f.path}), " ", el("span", {"class": "mono", text: f.missing ? "(missing when the step ran)" : short(f.cid)})]));
      if (f.cid && data.blobs[f.cid] !== undefined) { details.appendChild(el("pre", {text: data.blobs[f.cid]})); }
    });
    details.appendChild(el("h3", {text: "Transitions"}));
    details.appendChild(stepsTable(v.steps, false));
  }

  function showActivity(a) {
    details.textContent = "";
    details.appendChild(el("h2", {text: a.type + " " + a.name}));
    details.appendChild(props([
      ["by", a.actor, true], ["when", a.time.replace("T", " ").replace("Z", " UTC")],
      ["record", a.record_cid, true], ["transaction", a.tx_hash, true], ["block", String(a.block)],
      ["read", linkList(a.inputs)], ["made or moved", linkList(a.outputs)]
    ]));
  }

  function select(id, scroll) {
    var n = byId[id];
    if (!n) { return; }
    if (selected) { selected.classList.remove("selected"); }
    selected = document.getElementById("node-" + id);
    if (selected) {
      selected.classList.add("selected");
      if (scroll && selected.scrollIntoView) { selected.scrollIntoView({block: "center", inline: "center"}); }
    }
    if (isVersion(n)) { showVersion(n); } else { showActivity(n); }
  }

  svg.addEventListener("click", function (event) {
    var node = event.target.closest ? event.target.closest(".node") : null;
    if (node) { select(node.getAttribute("data-id"), false); }
  });
  svg.addEventListener("keydown", function (event) {
    var node = event.target.closest ? event.target.closest(".node") : null;
    if (node && (event.key === "Enter" || event.key === " ")) { select(node.getAttribute("data-id"), false); event.preventDefault(); }
  });

  // ---------------------------------------------------------------- artefact sections
  var sections = [];
  function pager(state, total, render) {
    var box = el("div", {"class": "pager"});
    var pages = Math.max(1, Math.ceil(total / PAGE));
    if (state.page >= pages) { state.page = pages - 1; }
    box.appendChild(el("button", {type: "button", text: "\u2039 newer", onclick: function () { if (state.page > 0) { state.page -= 1; render(); } }}));
    box.appendChild(el("span", {text: "page " + (state.page + 1) + " of " + pages + " (" + total + ")"}));
    box.appendChild(el("button", {type: "button", text: "older \u203a", onclick: function () { if (state.page < pages - 1) { state.page += 1; render(); } }}));
    if (state.page === 0) { box.firstChild.disabled = true; }
    if (state.page >= pages - 1) { box.lastChild.disabled = true; }
    return box;
  }
  data.artefacts.forEach(function (art) {
    var section = el("section", {"class": "artefact", "data-artefact": art.name});
    var versionsBox = el("div", {"class": "versions"});
    var timelineBox = el("div", {"class": "timeline-box"});
    var vState = {page: 0};
    var tState = {page: 0};
    var heading = el("h3");
    section.appendChild(heading);
    section.appendChild(el("h4", {text: "Versions"}));
    section.appendChild(versionsBox);
    section.appendChild(el("h4", {text: "Timeline of transitions"}));
    section.appendChild(timelineBox);
    var versions = art.versions.map(function (id) { return byId[id]; });
    function render() {
      var shown = versions.filter(matches).reverse();
      heading.textContent = art.name + " (" + art.kind + "): " + shown.length + " of " + versions.length + " versions";
      section.style.display = shown.length ? "" : "none";
      versionsBox.textContent = "";
      versionsBox.appendChild(pager(vState, shown.length, render));
      var table = el("table", {"class": "versions-table"}, [el("thead", null, [el("tr", null, ["#", "state", "CID", "registered", "steps", "gate"].map(function (h) { return el("th", {text: h}); }))])]);
      var body = el("tbody");
      shown.slice(vState.page * PAGE, (vState.page + 1) * PAGE).forEach(function (v) {
        body.appendChild(el("tr", {"data-id": v.id}, [
          el("td", null, [link(v.id)]),
          el("td", null, [el("span", {"class": "state " + v.category, text: v.state})]),
          el("td", {"class": "mono", title: v.cid, text: short(v.cid)}),
          el("td", {text: v.steps[0].time.replace("T", " ").replace("Z", " UTC")}),
          el("td", {text: String(v.steps.length)}),
          el("td", {"class": v.verdict.verified ? "verdict ok" : "verdict bad", text: v.verdict.verified ? "verified" : "not verified"})
        ]));
      });
      table.appendChild(body);
      versionsBox.appendChild(table);
      var steps = [];
      shown.forEach(function (v) { v.steps.forEach(function (s) { steps.push(Object.assign({version: v.id}, s)); }); });
      steps.sort(function (x, y) { return (y.block - x.block) || (y.log_index - x.log_index); });
      timelineBox.textContent = "";
      timelineBox.appendChild(pager(tState, steps.length, render));
      timelineBox.appendChild(stepsTable(steps.slice(tState.page * PAGE, (tState.page + 1) * PAGE), true));
    }
    sections.push(render);
    document.getElementById("artefacts").appendChild(section);
    render();
  });

  // ---------------------------------------------------------------- filter
  var nodes = svg.querySelectorAll(".node");
  var edges = svg.querySelectorAll(".edge, .edge-label");
  var input = document.getElementById("filter");
  var counter = document.getElementById("matches");
  function applyFilter() {
    query = input.value.trim().toLowerCase();
    var visible = {};
    var count = 0;
    nodes.forEach(function (g) {
      var id = g.getAttribute("data-id");
      var ok = matches(byId[id]);
      visible[id] = ok;
      if (ok && isVersion(byId[id])) { count += 1; }
      g.classList.toggle("dim", !ok);
    });
    edges.forEach(function (e) {
      e.classList.toggle("dim", !(visible[e.getAttribute("data-source")] && visible[e.getAttribute("data-target")]));
    });
    counter.textContent = query ? count + " of " + data.versions.length + " versions match" : "";
    sections.forEach(function (render) { render(); });
  }
  var timer = null;
  input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(applyFilter, 120); });
  input.addEventListener("change", applyFilter);

  // ---------------------------------------------------------------- zoom
  var scale = 1;
  var baseW = parseFloat(svg.getAttribute("data-width"));
  var baseH = parseFloat(svg.getAttribute("data-height"));
  function zoom(factor) {
    scale = Math.max(0.05, Math.min(4, factor));
    svg.setAttribute("width", String(baseW * scale));
    svg.setAttribute("height", String(baseH * scale));
  }
  document.getElementById("zoom-in").addEventListener("click", function () { zoom(scale * 1.25); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(scale / 1.25); });
  document.getElementById("zoom-fit").addEventListener("click", function () {
    var box = document.getElementById("graph");
    zoom(Math.min(1, box.clientWidth / baseW, box.clientHeight / baseH));
  });
  if (baseW > document.getElementById("graph").clientWidth && data.versions.length < 200) {
    document.getElementById("zoom-fit").click();
  }
})();
"""
