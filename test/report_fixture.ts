/** Shared set-up of the report tests: the committed results as report inputs, and an XML well-formedness check. */
import assert from "node:assert/strict";
import type { ReportSource } from "../src/report/build.ts";

/** Every committed evaluation and certification result (docs/results). */
export const RESULT_FILES = [
  "docs/results/image-defenses.json",
  "docs/results/speaker-defenses.json",
  "docs/results/image-defenses-adaptive.json",
  "docs/results/detection.json",
  "docs/results/detection-speaker.json",
  "docs/results/detection-adaptive.json",
  "docs/results/certify/certify.json",
  "docs/results/certify-speaker/certify.json",
];

/** Reads `paths` as report inputs. */
export async function readResults(paths: readonly string[] = RESULT_FILES): Promise<ReportSource[]> {
  return await Promise.all(
    paths.map(async (path) => ({ path, json: JSON.parse(await Deno.readTextFile(path)) })),
  );
}

const NAME = "[A-Za-z_][\\w.:-]*";
const ATTRIBUTE = new RegExp(`^(${NAME})="([^"<]*)"$`);
const ENTITY = /&(?!(amp|lt|gt|quot|apos|#\d+|#x[\da-fA-F]+);)/;

/**
 * Asserts that `xml` is well-formed: tags nest and close, attributes are quoted and unique, text and values
 * hold no raw `<` and no `&` outside an entity. Returns the element names in document order.
 */
export function assertWellFormedXml(xml: string): string[] {
  const open: string[] = [];
  const elements: string[] = [];
  const tag = /<(\/?)([^\s/>]+)((?:\s+[^\s=>]+="[^"]*")*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g;
  let last = 0;
  for (const match of xml.matchAll(tag)) {
    const text = xml.slice(last, match.index);
    assert.ok(
      !text.includes("<") && !ENTITY.test(text),
      `bad text before offset ${match.index}: ${text.slice(0, 80)}`,
    );
    last = match.index + match[0].length;
    if (match[2] === undefined) continue;
    const [, closing, name, attributes, selfClosing] = match;
    assert.match(name, new RegExp(`^${NAME}$`), `bad element name at offset ${match.index}`);
    if (closing) {
      assert.equal(open.pop(), name, `</${name}> at offset ${match.index} closes another element`);
      continue;
    }
    const names = attributes.trim().split(/(?<=")\s+/).filter((a) => a.length > 0).map((a) => {
      const parsed = a.match(ATTRIBUTE);
      assert.ok(parsed && !ENTITY.test(parsed[2]), `bad attribute ${a} of <${name}>`);
      return parsed[1];
    });
    assert.equal(new Set(names).size, names.length, `repeated attribute on <${name}>`);
    elements.push(name);
    if (!selfClosing) open.push(name);
  }
  const rest = xml.slice(last);
  assert.ok(!rest.includes("<") && !ENTITY.test(rest), "bad text at the end");
  assert.deepEqual(open, [], "unclosed elements");
  return elements;
}
