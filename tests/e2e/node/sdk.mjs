// Drive one JavaScript SDK against the gateway and print, as one JSON line, what the client got.
//
// Usage: node sdk.mjs '{"client": ..., "mode": ..., "baseURL": "http://127.0.0.1:PORT", "apiKey": ..., "model": ...}'
//   client: openai-chat | openai-responses (openai-node), ai-responses | ai-chat | ai-anthropic (Vercel AI SDK)
//   mode:   generate | stream | tool (non-streamed tool round trip) | stream-tool (streamed round trip)
// The pytest side (tests/e2e/test_node_sdk.py) scripts the emulated upstream and asserts this output.
// Any exception is printed as {"error": ...} with exit code 1, so a client-side rejection of a wire
// shape shows up as the client's own message.

import OpenAI from 'openai';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';

const PROMPT = 'Say hello';
const TOOL_PROMPT = 'What is the weather in Paris?';
const WEATHER_SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' } },
  required: ['city'],
  additionalProperties: false,
};
const forecast = (city) => ({ city, forecast: 'sunny', celsius: 21 });

// ----- openai-node ---------------------------------------------------------------------------------
function openaiClient(c) {
  return new OpenAI({ baseURL: `${c.baseURL}/v1`, apiKey: c.apiKey, maxRetries: 0, timeout: 30_000 });
}

async function chatTurn(client, c, messages, stream, tools) {
  const body = { model: c.model, messages, max_tokens: 64, ...(tools && { tools }) };
  if (!stream) {
    const r = await client.chat.completions.create(body);
    return { completion: r, chunks: null };
  }
  // the helper accumulates the chunks and throws on shapes it does not accept
  const s = client.chat.completions.stream({ ...body, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const chunk of s) chunks.push(chunk);
  return { completion: await s.finalChatCompletion(), chunks };
}

function chatSummary({ completion, chunks }) {
  const choice = completion.choices[0];
  const out = {
    id: completion.id,
    object: completion.object,
    text: choice.message.content ?? '',
    finishReason: choice.finish_reason,
    toolCalls: (choice.message.tool_calls ?? []).map((t) => ({
      id: t.id, name: t.function.name, args: JSON.parse(t.function.arguments),
    })),
    usage: completion.usage
      ? { input: completion.usage.prompt_tokens, output: completion.usage.completion_tokens }
      : null,
  };
  if (chunks) {
    out.chunks = chunks.length;
    out.usageChunks = chunks.filter((k) => k.usage).length;
    out.emptyChoiceChunks = chunks.filter((k) => k.choices.length === 0).length;
    out.finishChunks = chunks.filter((k) => k.choices.some((ch) => ch.finish_reason)).length;
  }
  return out;
}

async function openaiChat(c) {
  const client = openaiClient(c);
  const stream = c.mode === 'stream' || c.mode === 'stream-tool';
  if (c.mode === 'generate' || c.mode === 'stream') {
    return chatSummary(await chatTurn(client, c, [{ role: 'user', content: PROMPT }], stream));
  }
  const tools = [{
    type: 'function',
    function: { name: 'get_weather', description: 'Weather for a city', parameters: WEATHER_SCHEMA },
  }];
  const messages = [{ role: 'user', content: TOOL_PROMPT }];
  const first = chatSummary(await chatTurn(client, c, messages, stream, tools));
  const call = first.toolCalls[0];
  messages.push({
    role: 'assistant',
    content: null,
    tool_calls: [{ id: call.id, type: 'function', function: { name: call.name, arguments: JSON.stringify(call.args) } }],
  });
  messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify(forecast(call.args.city)) });
  const second = chatSummary(await chatTurn(client, c, messages, stream, tools));
  return { steps: [first, second], text: second.text };
}

async function responsesTurn(client, c, input, stream, tools) {
  const body = { model: c.model, input, max_output_tokens: 64, store: false, ...(tools && { tools }) };
  if (!stream) return { response: await client.responses.create(body), events: null };
  const s = client.responses.stream(body);
  const events = [];
  for await (const ev of s) events.push(ev);
  return { response: await s.finalResponse(), events };
}

function responsesSummary({ response, events }) {
  const out = {
    id: response.id,
    object: response.object,
    status: response.status,
    text: response.output_text,
    outputTypes: response.output.map((o) => o.type),
    toolCalls: response.output.filter((o) => o.type === 'function_call').map((o) => ({
      id: o.call_id, itemId: o.id, name: o.name, args: JSON.parse(o.arguments),
    })),
    usage: response.usage
      ? { input: response.usage.input_tokens, output: response.usage.output_tokens }
      : null,
    output: response.output,
  };
  if (events) {
    out.eventTypes = events.map((e) => e.type);
    out.sequenceNumbers = events.map((e) => e.sequence_number);
  }
  return out;
}

async function openaiResponses(c) {
  const client = openaiClient(c);
  const stream = c.mode === 'stream' || c.mode === 'stream-tool';
  if (c.mode === 'generate' || c.mode === 'stream') {
    return responsesSummary(await responsesTurn(client, c, PROMPT, stream));
  }
  const tools = [{
    type: 'function', name: 'get_weather', description: 'Weather for a city', parameters: WEATHER_SCHEMA, strict: true,
  }];
  const input = [{ role: 'user', content: TOOL_PROMPT }];
  const turn = await responsesTurn(client, c, input, stream, tools);
  const first = responsesSummary(turn);
  const call = first.toolCalls[0];
  // the documented round trip: every output item goes back as it came, then the call's output
  input.push(...turn.response.output);
  input.push({ type: 'function_call_output', call_id: call.id, output: JSON.stringify(forecast(call.args.city)) });
  const second = responsesSummary(await responsesTurn(client, c, input, stream, tools));
  return { steps: [first, second], text: second.text };
}

// ----- Vercel AI SDK --------------------------------------------------------------------------------
function aiModel(c) {
  if (c.client === 'ai-anthropic') {
    return createAnthropic({ baseURL: `${c.baseURL}/v1`, apiKey: c.apiKey })(c.model);
  }
  const provider = createOpenAI({ baseURL: `${c.baseURL}/v1`, apiKey: c.apiKey });
  return c.client === 'ai-chat' ? provider.chat(c.model) : provider(c.model);
}

function stepSummary(step) {
  return {
    text: step.text,
    finishReason: step.finishReason,
    toolCalls: step.toolCalls.map((t) => ({ id: t.toolCallId, name: t.toolName, args: t.input })),
    toolResults: step.toolResults.map((t) => ({ id: t.toolCallId, output: t.output })),
    usage: { input: step.usage.inputTokens, output: step.usage.outputTokens },
    responseId: step.response?.id ?? null,
  };
}

async function vercel(c) {
  const model = aiModel(c);
  const stream = c.mode === 'stream' || c.mode === 'stream-tool';
  const withTools = c.mode === 'tool' || c.mode === 'stream-tool';
  const options = {
    model,
    maxRetries: 0,
    maxOutputTokens: 64,
    prompt: withTools ? TOOL_PROMPT : PROMPT,
    // nothing is stored upstream of a stateless gateway: send whole items, never `item_reference`s
    ...(c.store !== 'default' && { providerOptions: { openai: { store: false } } }),
    ...(withTools && {
      tools: {
        get_weather: tool({
          description: 'Weather for a city',
          inputSchema: jsonSchema(WEATHER_SCHEMA),
          execute: async ({ city }) => forecast(city),
        }),
      },
      stopWhen: stepCountIs(2),
    }),
  };
  if (!stream) {
    const r = await generateText(options);
    return {
      text: r.text,
      finishReason: r.finishReason,
      usage: { input: r.totalUsage.inputTokens, output: r.totalUsage.outputTokens },
      warnings: r.warnings ?? [],
      steps: r.steps.map(stepSummary),
    };
  }
  const errors = [];
  const r = streamText({ ...options, onError: ({ error }) => errors.push(String(error?.message ?? error)) });
  const parts = [];
  let deltas = 0;
  for await (const part of r.fullStream) {
    if (part.type === 'text-delta') deltas += 1;
    if (part.type === 'error') errors.push(String(part.error?.message ?? part.error));
    if (parts[parts.length - 1] !== part.type) parts.push(part.type); // runs of the same part collapsed
  }
  const steps = await r.steps;
  const usage = await r.totalUsage;
  return {
    text: await r.text,
    finishReason: await r.finishReason,
    usage: { input: usage.inputTokens, output: usage.outputTokens },
    warnings: (await r.warnings) ?? [],
    parts,
    textDeltas: deltas,
    errors,
    steps: steps.map(stepSummary),
  };
}

const RUNNERS = {
  'openai-chat': openaiChat,
  'openai-responses': openaiResponses,
  'ai-responses': vercel,
  'ai-chat': vercel,
  'ai-anthropic': vercel,
};

const c = JSON.parse(process.argv[2]);
try {
  const result = await RUNNERS[c.client](c);
  process.stdout.write(`${JSON.stringify({ ok: true, result })}\n`);
} catch (error) {
  const detail = { name: error?.name, message: String(error?.message ?? error), status: error?.status ?? error?.statusCode };
  if (error?.responseBody) detail.responseBody = error.responseBody;
  if (error?.error) detail.body = error.error;
  process.stdout.write(`${JSON.stringify({ ok: false, error: detail })}\n`);
  process.exitCode = 1;
}
