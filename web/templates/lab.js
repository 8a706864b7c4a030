// The lab's live updates (the portal's only script; pages work without it).
// Text only, never HTML: every value goes in with textContent.
(function () {
  "use strict";
  if (!window.EventSource) {
    return;
  }

  function cell(row, text, cls) {
    var td = row.insertCell(-1);
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) {
      td.className = cls;
    }
    return td;
  }

  function day(t) {
    return t ? t.slice(0, 19) : "";
  }

  function link(td, href, text) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    td.appendChild(a);
  }

  // The run page: the events the stream sends after those the page was
  // rendered with are appended; the stream's `end` event closes it.
  var table = document.getElementById("events");
  if (table && table.getAttribute("data-open") === "true") {
    var live = document.getElementById("live");
    var body = table.tBodies[0];
    var source = new EventSource(table.getAttribute("data-stream"));
    source.onmessage = function (message) {
      var e = JSON.parse(message.data);
      var row = body.insertRow(-1);
      [String(e.seq), e.at.slice(0, 23), e.kind, e.summary].forEach(function (text) {
        row.insertCell(-1).textContent = text;
      });
    };
    source.addEventListener("end", function () {
      source.close();
      live.textContent = "The run is over.";
    });
  }

  // The dashboard: machines and jobs from the lab-wide stream — a snapshot
  // replaces both tables, then each change replaces its row (a new job goes
  // on top). Rows are those of lab.html, keyed by data-key.
  var status = document.getElementById("lab-live");
  var machines = document.getElementById("machines");
  var jobs = document.getElementById("jobs");
  if (!status || !machines || !jobs) {
    return;
  }

  function machineRow(row, m) {
    row.setAttribute("data-key", m.name);
    row.className = m.in_lab ? "" : "gone";
    cell(row, m.name + (m.in_lab ? "" : " (not in lab.toml)"));
    cell(row, m.arch + (m.family ? " (" + m.family + ")" : ""));
    cell(row, m.state + (m.state_reason ? ": " + m.state_reason : ""), "state " + m.state);
    cell(row, m.health, "health " + m.health);
    cell(row, m.health_reason);
    cell(row, day(m.health_since));
    var job = cell(row, m.job);
    if (m.job && m.run) {
      job.appendChild(document.createTextNode(" · "));
      link(job, "/lab/runs/" + encodeURIComponent(m.run), "run");
    }
  }

  function jobRow(row, j) {
    row.setAttribute("data-key", j.id);
    var first = row.insertCell(-1);
    var code = document.createElement("code");
    code.textContent = j.id;
    var small = document.createElement("small");
    small.textContent = j.requirements + " · " + j.submitter;
    first.appendChild(code);
    first.appendChild(document.createElement("br"));
    first.appendChild(small);
    cell(row, j.state, "state " + j.state);
    cell(row, j.plan + " " + j.plan_version);
    cell(row, j.machine);
    cell(row, j.priority);
    cell(row, j.attempt);
    cell(row, day(j.submitted));
    cell(row, day(j.started));
    cell(row, day(j.finished));
    cell(row, j.waiting_reason);
    cell(row, j.error, "error");
    var run = row.insertCell(-1);
    if (j.run) {
      link(run, "/lab/runs/" + encodeURIComponent(j.run), "events");
    }
  }

  // Replaces the row of `key` (or adds one: at the end, or on top) with `fill`.
  function put(tbl, key, onTop, fill, value) {
    var body = tbl.tBodies[0];
    var rows = body.rows;
    var old = null;
    for (var i = rows.length - 1; i >= 0; i--) {
      var k = rows[i].getAttribute("data-key");
      if (k === null) {
        body.deleteRow(i); // the "none yet" row
      } else if (k === key) {
        old = rows[i];
      }
    }
    var row = document.createElement("tr");
    fill(row, value);
    if (old) {
      body.replaceChild(row, old);
    } else if (onTop && body.firstChild) {
      body.insertBefore(row, body.firstChild);
    } else {
      body.appendChild(row);
    }
  }

  function replaceAll(tbl, items, keyOf, fill) {
    var body = tbl.tBodies[0];
    if (items.length === 0) {
      return; // keep the page's "none yet" row
    }
    while (body.rows.length > 0) {
      body.deleteRow(0);
    }
    items.forEach(function (v) {
      fill(body.insertRow(-1), v);
    });
  }

  var lab = new EventSource(status.getAttribute("data-stream"));
  lab.addEventListener("snapshot", function (message) {
    var s = JSON.parse(message.data);
    replaceAll(machines, s.machines, function (m) { return m.name; }, machineRow);
    replaceAll(jobs, s.jobs, function (j) { return j.id; }, jobRow);
    status.textContent = "Live: machines and jobs update as the orchestrator changes them.";
  });
  lab.addEventListener("machine", function (message) {
    var m = JSON.parse(message.data);
    put(machines, m.name, false, machineRow, m);
  });
  lab.addEventListener("job", function (message) {
    var j = JSON.parse(message.data);
    put(jobs, j.id, true, jobRow, j);
  });
  lab.onerror = function () {
    status.textContent = "Reconnecting to the lab's live updates…";
  };
}());
