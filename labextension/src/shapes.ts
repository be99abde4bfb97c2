/**
 * The JSON shapes of the server extension's API and events, as
 * wizard/server/shapes.py and wizard/server/events.py name them (a test checks
 * that both sides list the same fields).
 */

/** One kernel death: an entry of GET /deaths, and the data of a death event. */
export interface IDeath {
  time: number | null;
  kernel_id: string | null;
  notebook: string | null;
  kernel_name: string | null;
  cause: string | null;
  signal: string | null;
  exit_code: number | null;
  rss_bytes: number | null;
  limit_bytes: number | null;
  detail: string | null;
  exact: boolean;
  notify: boolean;
  summary: string | null;
  label: string | null;
  url: string | null;
  ran_cells: boolean;
}

export interface IDeaths {
  now: number;
  recording: boolean;
  deaths: IDeath[];
}

/** One kernel of this server's kernel manager. */
export interface IOwnKernel {
  kernel_id: string;
  path: string | null;
  kernel_name: string | null;
  execution_state: string;
  idle_seconds: number | null;
  rss_bytes: number | null;
  local: boolean;
}

export interface ILeftKernel extends IOwnKernel {
  reason: string;
}

/** GET /halt-idle: what halting would do. */
export interface IHaltPlan {
  threshold: number;
  halt: IOwnKernel[];
  left: ILeftKernel[];
  freed_bytes: number;
}

/** POST /halt-idle {kernel_ids}: what it did. */
export interface IHaltAnswer {
  halted: IOwnKernel[];
  failed: ILeftKernel[];
  kept: ILeftKernel[];
  gone: string[];
  freed_bytes: number;
}

export interface IReport {
  text: string;
}

/** GET /previous: the server before this one, when it stopped with its kernels. */
export interface IPreviousServer {
  stopped_cleanly: boolean | null;
  last_record: number | null;
  started: number | null;
  notebooks: string[];
  usage_bytes: number | null;
  limit_bytes: number | null;
  cause: string | null;
  certainty: string;
  evidence: string[];
  message: string;
  label: string;
  url: string;
}
