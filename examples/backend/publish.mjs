// Send a message to a user's open wsauth sessions from a Node backend
// (Node 18 or later: fetch is built in).
//
//     node publish.mjs http://127.0.0.1:8000 publish.key alice 'your order shipped'
//
// Prints wsauth's answer, `delivered N`: the sessions that took the message.
import { readFileSync } from "node:fs";

export async function publish(baseUrl, key, user, message) {
  const answer = await fetch(`${baseUrl}/publish?user=${encodeURIComponent(user)}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}` },
    body: message,
  });
  const text = await answer.text();
  if (!answer.ok) {
    throw new Error(`publish: ${answer.status} ${text}`);
  }
  return text;
}

const [baseUrl, keyFile, user, message] = process.argv.slice(2);
const key = readFileSync(keyFile, "utf8").replace(/\n$/, "");
process.stdout.write(await publish(baseUrl, key, user, message));
