// Streams a chat completion from SIM_BASE_URL with the official OpenAI
// Node client, twice: the raw async iterator and the ChatCompletionStream
// helper (which validates and assembles the chunks). Prints one JSON line
// with what it received; exits non-zero on any error.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.SIM_BASE_URL, apiKey: 'sk-sim', maxRetries: 0, timeout: 20000 });
const model = process.env.SIM_MODEL;
const messages = [{ role: 'user', content: 'Say hello from the simulator' }];

const stream = await client.chat.completions.create({
  model, messages, stream: true, max_tokens: 5, stream_options: { include_usage: true },
});
let content = '';
let usage = null;
let chunks = 0;
let finish = null;
for await (const chunk of stream) {
  chunks++;
  for (const c of chunk.choices) {
    content += c.delta?.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  if (chunk.usage) usage = chunk.usage;
}

const runner = client.chat.completions.stream({ model, messages, max_tokens: 3 });
const final = await runner.finalChatCompletion();

console.log(JSON.stringify({
  content, usage, chunks, finish,
  helper: { content: final.choices[0].message.content, finish: final.choices[0].finish_reason },
}));
