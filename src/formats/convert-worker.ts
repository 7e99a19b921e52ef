/**
 * Converting and quantizing whole models take seconds to minutes of JavaScript: in
 * `lmx serve` that would stall every other request, so they run on a worker thread.
 * This file is both the caller's API and the worker's body.
 */
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { convertHfToGguf } from "./convert.js";
import { quantizeModel, type QuantizeType } from "./quantize-model.js";

type Job =
  | { kind: "convert"; src: string; out: string }
  | {
      kind: "quantize";
      src: string;
      out: string;
      type: QuantizeType;
      importance?: Map<string, Float32Array>;
    };

interface Message {
  tensor?: [i: number, n: number, name: string];
}

/** Runs a conversion job on a worker thread; tensor progress comes back through `onTensor`. */
export function runConversion(
  job: Job,
  onTensor?: (i: number, n: number, name: string) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { lmxConversion: job } });
    w.on("message", (m: Message) => m.tensor && onTensor?.(...m.tensor));
    w.on("error", reject);
    w.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`the conversion worker exited with code ${code}`)),
    );
  });
}

if (!isMainThread && workerData?.lmxConversion) {
  const job = workerData.lmxConversion as Job;
  const post = (m: Message) => parentPort!.postMessage(m);
  if (job.kind === "convert") convertHfToGguf(job.src, job.out);
  else
    quantizeModel(job.src, job.out, job.type, (i, n, name) => post({ tensor: [i, n, name] }), {
      importance: job.importance,
    });
}
