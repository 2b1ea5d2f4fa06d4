// The Vercel AI SDK's default OpenAI provider (`openai(model)`: the Responses API, `store: true` unless
// told otherwise) against the gateway's stored responses, printing one JSON line of what it got.
//
// Usage: node sdk_stored.mjs '{"mode": ..., "baseURL": "http://127.0.0.1:PORT", "apiKey": ..., "model": ...}'
//   mode: tool | stream-tool  a two-step tool loop with the provider's defaults (no providerOptions)
//         chain                three turns, each naming the one before by `previousResponseId` only
// The pytest side (tests/e2e/test_node_sdk_stored.py) scripts the emulated upstream and asserts this.

import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';

const WEATHER_SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' } },
  required: ['city'],
  additionalProperties: false,
};
const TURNS = ['My name is Ada.', 'What is my name?', 'Spell it backwards.'];

function model(c) {
  return createOpenAI({ baseURL: `${c.baseURL}/v1`, apiKey: c.apiKey })(c.model);
}

function stepSummary(step) {
  return {
    text: step.text,
    finishReason: step.finishReason,
    toolCalls: step.toolCalls.map((t) => ({ id: t.toolCallId, name: t.toolName, args: t.input })),
    toolResults: step.toolResults.map((t) => ({ id: t.toolCallId, output: t.output })),
    responseId: step.response?.id ?? null,
  };
}

async function toolLoop(c) {
  const options = {
    model: model(c),
    maxRetries: 0,
    maxOutputTokens: c.maxOutputTokens ?? 64, // thinking needs room: Claude's smallest budget is 1024
    prompt: 'What is the weather in Paris?',
    tools: {
      get_weather: tool({
        description: 'Weather for a city',
        inputSchema: jsonSchema(WEATHER_SCHEMA),
        execute: async ({ city }) => ({ city, forecast: 'sunny', celsius: 21 }),
      }),
    },
    stopWhen: stepCountIs(2),
  };
  if (c.mode === 'tool') {
    const r = await generateText(options);
    return { text: r.text, steps: r.steps.map(stepSummary), errors: [] };
  }
  const errors = [];
  const r = streamText({ ...options, onError: ({ error }) => errors.push(String(error?.message ?? error)) });
  for await (const part of r.fullStream) {
    if (part.type === 'error') errors.push(String(part.error?.message ?? part.error));
  }
  return { text: await r.text, steps: (await r.steps).map(stepSummary), errors };
}

async function chain(c) {
  const turns = [];
  let previous;
  for (const prompt of TURNS) {
    const r = await generateText({
      model: model(c),
      maxRetries: 0,
      maxOutputTokens: 64,
      prompt,
      ...(previous && { providerOptions: { openai: { previousResponseId: previous } } }),
    });
    previous = r.providerMetadata?.openai?.responseId ?? r.response.id;
    turns.push({ text: r.text, responseId: previous });
  }
  return { turns };
}

const c = JSON.parse(process.argv[2]);
try {
  const result = c.mode === 'chain' ? await chain(c) : await toolLoop(c);
  process.stdout.write(`${JSON.stringify({ ok: true, result })}\n`);
} catch (error) {
  const detail = { name: error?.name, message: String(error?.message ?? error), status: error?.status ?? error?.statusCode };
  if (error?.responseBody) detail.responseBody = error.responseBody;
  process.stdout.write(`${JSON.stringify({ ok: false, error: detail })}\n`);
  process.exitCode = 1;
}
