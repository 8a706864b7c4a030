// The run page's live tail: the events the stream sends after those the
// page was rendered with are appended to the table; the stream's `end`
// event (the run is over) closes it. Text only, never HTML.
(function () {
  "use strict";
  var table = document.getElementById("events");
  if (!table || table.getAttribute("data-open") !== "true" || !window.EventSource) {
    return;
  }
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
}());
