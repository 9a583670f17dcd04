/**
 * Redaction of an upstream's secrets (src/server/redact.ts): URLs keep their shape with userinfo, query
 * values and fragment hidden; free text loses every secret of the URL and the headers, raw or encoded.
 */
import assert from "node:assert/strict";
import { REDACTED, redactUrl, secretRedactor, upstreamSecrets } from "../src/server/redact.ts";

Deno.test("redactUrl hides userinfo, query values and the fragment, and keeps the rest as written", () => {
  assert.equal(
    redactUrl("https://alice:s3cr3t@api.example.com:8443/v1/predict?api_key=sk-123&model=lenet#tok"),
    `https://${REDACTED}@api.example.com:8443/v1/predict?api_key=${REDACTED}&model=${REDACTED}#${REDACTED}`,
  );
  assert.equal(redactUrl("http://127.0.0.1:8080/predict"), "http://127.0.0.1:8080/predict");
  assert.equal(redactUrl("http://h/p?sk-bare-token&a="), `http://h/p?${REDACTED}&a=${REDACTED}`);
  // Text that does not parse as a URL is still cleaned (it appears in configuration errors).
  assert.equal(redactUrl("not a url?key=abcd"), `not a url?key=${REDACTED}`);
});

Deno.test("secretRedactor removes the URL's and headers' secrets from free text, raw and percent-encoded", () => {
  const secrets = upstreamSecrets({
    url: "http://bob:pa55word@127.0.0.1:1/predict?api_key=k%2Bey/123&v=2",
    headers: { Authorization: "Bearer tok-456", "X-Api-Key": "hdr-789" },
  });
  const redact = secretRedactor(secrets);
  const text = "GET http://bob:pa55word@127.0.0.1:1/predict?api_key=k%2Bey/123&v=2 failed; key k+ey/123, " +
    "header Bearer tok-456, bare tok-456, x hdr-789, user bob";
  const out = redact(text);
  for (const secret of ["pa55word", "k%2Bey/123", "k+ey/123", "tok-456", "hdr-789"]) {
    assert.ok(!out.includes(secret), `${secret} left in ${out}`);
  }
  // Values shorter than MIN_SECRET_LENGTH ("2", "bob") would match ordinary text: they stay.
  assert.ok(out.includes("v=2") && out.includes("user bob"), out);
  assert.equal(secretRedactor([])("nothing to hide"), "nothing to hide");
});
