/** Text from outside programs (participant names, failure messages) made safe for XML and HTML. */

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/**
 * Escapes `text` for an element's content or a quoted attribute of XML 1.0 or HTML. Characters XML 1.0 cannot hold
 * even as a reference (C0 controls but tab, newline and return; lone surrogates; U+FFFE, U+FFFF), which a peer's
 * stderr may carry, are shown as `\uXXXX` instead. `attribute` also keeps tabs and line breaks as references, which
 * an XML parser would otherwise turn into spaces.
 */
export function escapeMarkup(text: string, attribute = false): string {
  return text
    .replace(
      // biome-ignore lint/suspicious/noControlCharactersInRegex: these control characters are the ones to replace.
      /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
      (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
    )
    .replace(/[&<>"']/g, (char) => ENTITIES[char] as string)
    .replace(/[\t\n\r]/g, (char) => (attribute ? `&#${char.charCodeAt(0)};` : char));
}
