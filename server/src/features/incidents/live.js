// Slate: keeps the open incident list live, or says plainly that it is not.
// Adds newly arrived reports without a reload; when the stream drops (server restarted, network
// gone, session ended) it shows a banner with the time of the last update, tries again, and on
// reconnecting fetches what it missed. Rows are built with textContent only: nothing from the
// server is ever parsed as HTML, and every time shown is the server's own words (UK time).
"use strict";
(function () {
  var body = document.getElementById("incidents");
  var banner = document.getElementById("live-banner");
  var status = document.getElementById("live-status");
  if (!body || !status || !window.EventSource || !window.fetch) { return; }
  var tickSeconds = Number(status.getAttribute("data-tick-seconds")) || 15;
  var lastUpdate = status.getAttribute("data-as-of");
  var source = null;
  var watchdog = null;
  var retry = null;

  function shown(incident) {
    return body.querySelector("tr[data-incident='" + Number(incident) + "']") !== null;
  }

  function newest() {
    var most = 0;
    body.querySelectorAll("tr[data-incident]").forEach(function (row) {
      most = Math.max(most, Number(row.getAttribute("data-incident")) || 0);
    });
    return most;
  }

  function addRow(report) {
    if (shown(report.incident)) { return; }
    var row = document.createElement("tr");
    row.className = "fresh";
    row.setAttribute("data-incident", String(Number(report.incident)));
    var cells = [
      ["a", "Incident " + report.incident, "/incidents/" + Number(report.incident)],
      ["td", report.pressed],
      // An incident recorded by hand may name no device.
      report.device === null ? ["td", "No device"] : ["a", "Device " + report.device, "/devices/" + Number(report.device)],
      ["td", report.status],
      ["td", "Open the incident for details", null, 5]
    ];
    cells.forEach(function (cell) {
      var td = document.createElement("td");
      if (cell[3]) { td.colSpan = cell[3]; }
      if (cell[0] === "a") {
        var link = document.createElement("a");
        link.href = cell[2];
        link.textContent = cell[1];
        td.appendChild(link);
      } else {
        td.textContent = cell[1];
      }
      row.appendChild(td);
    });
    body.insertBefore(row, body.firstChild);
    var empty = document.getElementById("no-incidents");
    if (empty) { empty.hidden = true; }
    if (banner) {
      banner.hidden = false;
      banner.textContent = report.device === null
        ? "New incident recorded (incident " + report.incident + ")."
        : "New report from device " + report.device + " (incident " + report.incident + ").";
    }
    document.title = "(new) " + document.title.replace(/^\(new\) /, "");
  }

  function say(live, words, signIn) {
    status.className = "live-status " + (live ? "live-ok" : "live-down");
    status.setAttribute("role", live ? "status" : "alert");
    status.setAttribute("data-live", live ? "yes" : "no");
    status.textContent = words;
    if (signIn) {
      status.appendChild(document.createTextNode(" "));
      var link = document.createElement("a");
      link.href = "/staff/login";
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = "Sign in again (opens a new tab)";
      status.appendChild(link);
      status.appendChild(document.createTextNode(": this list catches up by itself once you have."));
    }
  }

  function live() {
    say(true, "Live: new reports appear here as they arrive. Last update " + lastUpdate + ".");
  }

  function down(why, signIn) {
    say(false, "Not live: " + why + " This list is as it was at " + lastUpdate +
      ": reports since then are not shown. Trying again every few seconds.", signIn);
  }

  // No word from the server for two ticks: the connection is gone even if nothing said so.
  function heard() {
    clearTimeout(watchdog);
    watchdog = setTimeout(function () {
      stop();
      down("the server has not been heard from.", false);
      later();
    }, tickSeconds * 2500);
  }

  function stop() {
    clearTimeout(watchdog);
    if (source) { source.close(); source = null; }
  }

  function later() {
    clearTimeout(retry);
    retry = setTimeout(reconnect, 3000);
  }

  // Fetches what the list missed; `then` runs once the list has everything up to now.
  function catchUp(then) {
    // A connection that went silent would leave the fetch waiting for ever: give up after a tick.
    var controller = window.AbortController ? new AbortController() : null;
    var patience = setTimeout(function () { if (controller) { controller.abort(); } }, tickSeconds * 1000);
    fetch("/reports/since?after=" + newest(), {
      credentials: "same-origin", cache: "no-store", signal: controller ? controller.signal : undefined
    })
      .then(function (response) {
        clearTimeout(patience);
        if (response.status === 401 || response.status === 403) {
          stop();
          down("you are signed out.", true);
          later();
          return;
        }
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json().then(function (rows) {
          rows.slice().reverse().forEach(addRow);
          then();
        });
      })
      .catch(function () {
        clearTimeout(patience);
        stop();
        down("the server cannot be reached.", false);
        later();
      });
  }

  function reconnect() {
    clearTimeout(retry);
    stop();
    catchUp(connect);
  }

  function connect() {
    source = new EventSource("/reports/live");
    var caughtUp = false;
    heard();
    source.addEventListener("alive", function (message) {
      heard();
      lastUpdate = JSON.parse(message.data);
      // The first word on a new stream: everything from here on arrives on it, so fetch what
      // came before it and the list is whole.
      if (!caughtUp) {
        caughtUp = true;
        catchUp(live);
      } else {
        live();
      }
    });
    source.addEventListener("report", function (message) {
      heard();
      addRow(JSON.parse(message.data));
    });
    source.addEventListener("missed", function () { catchUp(live); });
    source.addEventListener("signed-out", function () {
      stop();
      down("you are signed out.", true);
      later();
    });
    source.onerror = function () {
      // Take retries into our own hands: the browser's own would not tell the page anything.
      stop();
      catchUp(function () {
        down("the connection to the server dropped.", false);
        later();
      });
    };
  }

  window.addEventListener("focus", function () { if (!source) { reconnect(); } });
  say(true, "Connecting to live updates… This list is as it was at " + lastUpdate + ".");
  status.setAttribute("data-live", "connecting");
  connect();
})();
