// Live logs: the log session's stream (server-sent events), one line per event.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const pre = document.getElementById("log");
  const state = document.getElementById("log-state");
  if (!pre || !pre.dataset.stream) return;
  const MAX_LINES = 2000;
  const source = new EventSource(pre.dataset.stream);
  source.onopen = () => { state.textContent = "Streaming live."; };
  source.onmessage = (event) => {
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const line = document.createElement("span");
    line.className = "line";
    line.textContent = event.data + "\n";
    pre.appendChild(line);
    while (pre.childElementCount > MAX_LINES) pre.removeChild(pre.firstElementChild);
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  };
  source.onerror = () => {
    state.textContent = source.readyState === EventSource.CLOSED
      ? "The stream ended: reload the page to follow the logs again."
      : "Reconnecting…";
  };
});
