#!/usr/bin/env node
// ONNX Runtime peer of `u2net bench`: an fp32 ONNX export of the same
// network and weights, on onnxruntime-node's CPU execution provider, timed
// with the same protocol and output lines.
//
//   node bench/ort_runner.js --model M.onnx [--size S|WxH] [--runs N]
//                            [--warmup W] [--threads T]
//
// Prints `run I ms=X` per timed run, an information line, then
// `median_ms=X p10_ms=Y p90_ms=Z peak_rss_mb=R` (maxRSS, MB of 10^6 bytes).
'use strict';

const ort = require('onnxruntime-node');

function fail(message) {
  process.stderr.write(`ort_runner: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { model: null, size: '320', runs: 10, warmup: 2, threads: 2 };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    const value = argv[i + 1];
    if (value === undefined) fail(`option ${name} needs a value`);
    i++;
    if (name === '--model') opts.model = value;
    else if (name === '--size') opts.size = value;
    else if (name === '--runs') opts.runs = Number(value);
    else if (name === '--warmup') opts.warmup = Number(value);
    else if (name === '--threads') opts.threads = Number(value);
    else fail(`unknown option ${name}`);
  }
  if (!opts.model) fail('--model is required');
  if (!(Number.isInteger(opts.runs) && opts.runs >= 1)) fail('--runs must be a whole number >= 1');
  if (!(Number.isInteger(opts.warmup) && opts.warmup >= 0)) fail('--warmup must be a whole number >= 0');
  if (!(Number.isInteger(opts.threads) && opts.threads >= 1)) fail('--threads must be a whole number >= 1');
  const [w, h] = opts.size.split('x').map(Number);
  opts.width = w;
  opts.height = h === undefined ? w : h;
  if (!(Number.isInteger(opts.width) && opts.width >= 1 && Number.isInteger(opts.height) && opts.height >= 1)) {
    fail(`--size: '${opts.size}' is not S or WxH`);
  }
  return opts;
}

// The benchmark input: the formula of fill_pattern in src/cmd_bench.c.
function pattern(h, w) {
  const data = new Float32Array(3 * h * w);
  const twoPi = 2 * Math.PI;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const u = (x + 0.5) / w;
        const v = (y + 0.5) / h;
        data[(c * h + y) * w + x] =
          Math.sin(twoPi * ((c + 1) * u + 2 * v)) + 0.5 * Math.cos(twoPi * (3 * u - (c + 1) * v));
      }
    }
  }
  return data;
}

// Linear interpolation between sorted neighbours, as cmd_bench.c.
function quantile(sorted, q) {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(opts.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const input = new ort.Tensor('float32', pattern(opts.height, opts.width), [1, 3, opts.height, opts.width]);
  const feeds = { [session.inputNames[0]]: input };
  const times = [];
  let outputs = null;
  for (let i = 0; i < opts.warmup + opts.runs; i++) {
    const start = process.hrtime.bigint();
    outputs = await session.run(feeds);
    const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
    if (i >= opts.warmup) {
      times.push(elapsedMs);
      process.stdout.write(`run ${times.length} ms=${elapsedMs.toFixed(2)}\n`);
    }
  }
  const d0 = outputs[session.outputNames[0]].data;
  let d0Sum = 0;
  for (let p = 0; p < d0.length; p++) d0Sum += d0[p];
  process.stdout.write(`model=${opts.model} size=${opts.width}x${opts.height} threads=${opts.threads} ` +
    `ort=${ort.env.versions.node} d0_mean=${(d0Sum / d0.length).toFixed(6)}\n`);
  times.sort((a, b) => a - b);
  const rssMb = (process.resourceUsage().maxRSS * 1024) / 1e6;  // maxRSS is in KiB
  process.stdout.write(`median_ms=${quantile(times, 0.5).toFixed(2)} p10_ms=${quantile(times, 0.1).toFixed(2)} ` +
    `p90_ms=${quantile(times, 0.9).toFixed(2)} peak_rss_mb=${rssMb.toFixed(1)}\n`);
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
