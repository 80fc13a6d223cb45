/** Tiny DOM helpers for the phone's static page (index.html). */

/** The element with `id`; throws if the page lacks it (a build mistake). */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el as T;
}

export function show(el: HTMLElement, on: boolean): void {
  el.hidden = !on;
}

/** Sets a text, or hides the element when there is none. */
export function text(el: HTMLElement, t: string | undefined): void {
  el.textContent = t ?? "";
  el.hidden = !t;
}

/** An element with a class and text. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, content?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (content !== undefined) e.textContent = content;
  return e;
}

/** A stable colour for a name's avatar. */
export function avatarColour(name: string): string {
  let h = 0;
  for (const c of name) h = (h * 31 + (c.codePointAt(0) ?? 0)) % 360;
  return `hsl(${h} 55% 45%)`;
}

/** An avatar: the first letter of `label`, coloured by `key` (the user name, so it stays the same everywhere). */
export function setAvatar(e: HTMLElement, label: string, key = label): void {
  e.textContent = ([...label.trim()][0] ?? "?").toUpperCase();
  e.style.background = avatarColour(key);
}

/** mm:ss (or h:mm:ss) of a duration in ms. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const two = (n: number) => String(n).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}` : `${two(Math.floor(s / 60))}:${two(s % 60)}`;
}
