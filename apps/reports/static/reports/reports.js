// Draws the report's charts from the figures the server put in #kf-rp-data (Chart.js, vendored).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("kf-rp-data").textContent);
  const accent = "#2454d6", green = "#12a150", amber = "#f79009", muted = "#98a2b3";
  Chart.defaults.font.family = "system-ui, sans-serif";
  Chart.defaults.animation = false; // figures, not a show: draw at once
  Chart.defaults.maintainAspectRatio = false;
  const scales = { y: { beginAtZero: true, ticks: { precision: 0 } } };

  function draw(id, config) {
    const canvas = document.getElementById(id);
    canvas.dataset.drawn = "false";
    new Chart(canvas, config);
    canvas.dataset.drawn = "true";
  }

  draw("chart-volume", {
    type: "line",
    data: {
      labels: data.volume.labels,
      datasets: [
        { label: "Conversations", data: data.volume.conversations, borderColor: accent, backgroundColor: accent + "33", fill: true, tension: 0.2 },
        { label: "AI resolved", data: data.volume.ai_resolved, borderColor: green, backgroundColor: green, tension: 0.2 },
        { label: "Handovers", data: data.volume.handovers, borderColor: amber, backgroundColor: amber, tension: 0.2 },
      ],
    },
    options: { scales, plugins: { legend: { position: "bottom" } } },
  });
  draw("chart-frt", {
    type: "bar",
    data: { labels: data.frt.labels, datasets: [{ label: "Conversations", data: data.frt.values, backgroundColor: accent }] },
    options: { scales, plugins: { legend: { display: false } } },
  });
  draw("chart-csat", {
    type: "bar",
    data: { labels: data.csat.labels, datasets: [{ label: "Ratings", data: data.csat.values,
      backgroundColor: ["#d92d20", "#f79009", muted, "#66c61c", green] }] },
    options: { scales, plugins: { legend: { display: false } } },
  });
  draw("chart-hours", {
    type: "bar",
    data: { labels: data.hours.labels, datasets: [{ label: "Conversations", data: data.hours.values, backgroundColor: accent }] },
    options: { scales, plugins: { legend: { display: false } } },
  });

  // The custom dates matter only for a custom period.
  const period = document.getElementById("id_period");
  const toggle = () => document.querySelectorAll(".kf-rp-custom").forEach((el) => { el.hidden = period.value !== "custom"; });
  period.addEventListener("change", toggle);
  toggle();
})();
