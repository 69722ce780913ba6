// Slate: adds newly arrived reports to the open incident list without a reload.
// Builds rows with textContent only: nothing from the server is ever parsed as HTML.
"use strict";
(function () {
  var body = document.getElementById("incidents");
  var banner = document.getElementById("live-banner");
  if (!body || !window.EventSource) { return; }
  var source = new EventSource("/reports/live");
  source.addEventListener("report", function (message) {
    var report = JSON.parse(message.data);
    var row = document.createElement("tr");
    row.className = "fresh";
    var cells = [
      ["a", "Incident " + report.incident, "/incidents/" + report.incident],
      ["td", new Date(report.pressed_at).toUTCString()],
      ["a", "Device " + report.device, "/devices/" + report.device],
      ["td", "New"],
      ["td", "Open the incident for details"]
    ];
    cells.forEach(function (cell) {
      var td = document.createElement("td");
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
      banner.textContent = "New report from device " + report.device + " (incident " + report.incident + ").";
    }
    document.title = "(new) " + document.title.replace(/^\(new\) /, "");
  });
})();
