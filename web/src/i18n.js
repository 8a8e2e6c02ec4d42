// The screens' words in Japanese (the notice's) and English. The language follows the
// browser (navigator.languages) until the visitor presses the switch; the choice is kept in
// localStorage, never in a cookie.

const KEY = "estca-lang";

/** The language shown: the visitor's switch, else the browser's first ja/en preference. */
export function currentLanguage() {
  const chosen = localStorage.getItem(KEY);
  if (chosen === "ja" || chosen === "en") return chosen;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const primary = String(tag).toLowerCase().split("-")[0];
    if (primary === "ja" || primary === "en") return primary;
  }
  return "en";
}

/**
 * Fills every element with data-i18n="key" from `words[lang]`, sets <html lang>, and wires
 * the switch button (#lang-switch) to the other language. `onChange` redraws dynamic text
 * after a switch. Returns the function that gives the words of the language shown.
 */
export function setupLanguage(words, onChange) {
  const apply = (redraw) => {
    const lang = currentLanguage();
    const table = words[lang];
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll("[data-i18n]")) {
      const text = table[el.dataset.i18n];
      if (text !== undefined) el.textContent = text;
    }
    for (const el of document.querySelectorAll("[data-i18n-label]")) {
      const text = table[el.dataset.i18nLabel];
      if (text !== undefined) el.setAttribute("aria-label", text);
    }
    const button = document.getElementById("lang-switch");
    if (button) button.textContent = lang === "ja" ? "English" : "日本語";
    if (redraw && onChange) onChange(lang);
  };
  const button = document.getElementById("lang-switch");
  if (button) {
    button.addEventListener("click", () => {
      localStorage.setItem(KEY, currentLanguage() === "ja" ? "en" : "ja");
      apply(true);
    });
  }
  apply(false); // the caller draws its dynamic text itself once it has this function's answer
  return () => words[currentLanguage()];
}
