// Keyboard shortcuts (the ? dialog lists them). Single keys, ignored while typing in a field.
"use strict";

function moveInList(step) {
  const links = [...document.querySelectorAll("#conversation-rows li[data-session] > a")];
  if (!links.length) return;
  const current = links.findIndex((link) => link.closest("li").classList.contains("selected") || link === document.activeElement);
  const next = links[Math.min(Math.max(current + step, 0), links.length - 1)];
  if (current === -1) links[0].click();
  else if (next !== links[current]) next.click();
}

function press(selector) {
  const button = document.querySelector(selector);
  if (button) button.click();
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable], dialog")) return;
  const actions = {
    "?": () => document.getElementById("shortcuts").showModal(),
    j: () => moveInList(1),
    k: () => moveInList(-1),
    n: () => press("#take-next"),
    t: () => press("#conversation-actions button[value=take]"),
    e: () => press("#conversation-actions button[value=close]"),
    r: () => document.getElementById("reply-text")?.focus(),
    "/": () => (document.getElementById("list-q") || document.querySelector("input[type=search]"))?.focus(),
  };
  const action = actions[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
});
