// The reports page: typing a date chooses the custom period (without this script the period
// select says which one applies). No framework, no build.
"use strict";

document.addEventListener("change", (event) => {
  if (!event.target.matches("input[data-custom-date]")) return;
  const period = event.target.form.querySelector("select[name=period]");
  if (period) period.value = "custom";
});
