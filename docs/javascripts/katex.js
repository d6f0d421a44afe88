// KaTeX renders the \( \) and \[ \] spans that pymdownx.arithmatex writes, on every page
// load (Material's instant navigation included).
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
    ],
  });
});
