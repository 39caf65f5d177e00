// Translations: the English text is the key; a language's module maps it
// to its own words. The browser's language picks one we have (English and
// Vietnamese), unless the user chose in Settings.
let words = {};
let language = "en";

export const LANGUAGES = { en: "English", vi: "Tiếng Việt" };

export async function useLanguage(choice) {
  const wanted = (choice && choice !== "auto" ? [choice] : navigator.languages || [navigator.language || "en"])
    .map((l) => l.toLowerCase().split("-")[0]);
  language = wanted.find((l) => l in LANGUAGES) || "en";
  words = language === "vi" ? (await import("./vi.js")).default : {};
  document.documentElement.lang = language;
}

// t("Moved {n} to Trash", { n: 3 })
export function t(text, vars) {
  const s = words[text] || text;
  return vars ? s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : "")) : s;
}

