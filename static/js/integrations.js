// The event-webhooks settings page: the signing secret's copy button (shown only when this runs;
// the page's CSP allows no inline script). No framework, no build.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    const said = document.getElementById(button.dataset.said);
    button.hidden = false;
    button.addEventListener("click", async () => {
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        said.textContent = button.dataset.copied;
      } catch {
        // No clipboard access (an insecure origin, a refused permission): the text is selected.
        said.textContent = button.dataset.select;
      }
    });
  }
});
