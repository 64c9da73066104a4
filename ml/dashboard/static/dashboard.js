/* Draws each page's plots from the JSON beside them and refreshes the page's content every
   few seconds from ?fragment=1 (server-rendered, escaped HTML), so a running job or traffic
   shows without a reload. No inline scripts: the Content-Security-Policy forbids them. */
(function () {
  "use strict";

  function draw(root) {
    root.querySelectorAll("div.chart[data-figure]").forEach(function (div) {
      var source = document.getElementById(div.dataset.figure);
      if (!source) { return; }
      var figure = JSON.parse(source.textContent);
      Plotly.react(div, figure.data, figure.layout, {displaylogo: false, responsive: true});
    });
  }

  function editing(main) {
    var active = document.activeElement;
    return active && main.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }

  function refresh() {
    var main = document.getElementById("content");
    var state = document.getElementById("refresh-state");
    if (!main || editing(main)) { return; }
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    fetch(url.toString(), {credentials: "same-origin"}).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    }).then(function (text) {
      main.innerHTML = text;
      draw(main);
      document.body.dataset.refreshed = String(Date.now());
      if (state) { state.textContent = "updated " + new Date().toLocaleTimeString(); }
    }).catch(function (error) {
      if (state) { state.textContent = "update failed: " + error.message; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
    var seconds = Number(document.body.dataset.refreshSeconds || 0);
    if (seconds > 0) { window.setInterval(refresh, seconds * 1000); }
  });
}());
