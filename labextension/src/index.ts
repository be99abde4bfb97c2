import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

/**
 * The key the server extension puts into the page config: without it there is no
 * API to ask, and the plugin stays silent.
 */
const PAGE_CONFIG_KEY = 'kernelWizardApi';
const API = 'api/kernel-wizard';
const POLL_MS = 2000;
/** Seconds of overlap between polls: a death can be stored with an earlier time. */
const OVERLAP_S = 60;

/**
 * One kernel death, as GET api/kernel-wizard/deaths gives it.
 */
interface IDeath {
  time: number;
  kernel_id: string | null;
  notebook: string | null;
  cause: string;
  signal: string | null;
  detail: string | null;
  notify: boolean;
  summary: string;
  label: string;
  url: string;
}

interface IDeaths {
  now: number;
  recording: boolean;
  deaths: IDeath[];
}

interface IHaltAnswer {
  ok: boolean;
  error?: string;
  halted: { notebook: string | null }[];
  failed?: { notebook: string | null; error: string | null }[];
  spared: { notebook: string | null; reason: string | null }[];
}

interface IReport {
  text: string;
}

/**
 * Ask the server extension; the parsed JSON, or an Error with the server's one line.
 */
async function requestAPI<T>(
  settings: ServerConnection.ISettings,
  endPoint: string,
  init: RequestInit = {}
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API, endPoint);
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new Error((data && data.error) || `HTTP ${response.status}`);
  }
  return data as T;
}

function basename(path: string): string {
  const parts = path.split('/');
  return parts[parts.length - 1];
}

/**
 * The open notebook whose kernel has this id, if any.
 */
function panelOf(
  tracker: INotebookTracker | null,
  kernelId: string | null
): NotebookPanel | null {
  if (!tracker || !kernelId) {
    return null;
  }
  const found = tracker.find(
    panel => panel.sessionContext.session?.kernel?.id === kernelId
  );
  return found ?? null;
}

function openNotebooks(tracker: INotebookTracker | null): number {
  if (!tracker) {
    return 1; // no tracker to ask (another frontend): keep asking the server
  }
  let n = 0;
  tracker.forEach(() => {
    n += 1;
  });
  return n;
}

async function haltIdle(
  settings: ServerConnection.ISettings,
  spare: string[]
): Promise<void> {
  const id = Notification.emit('Halting idle kernels…', 'in-progress', {
    autoClose: false
  });
  try {
    const answer = await requestAPI<IHaltAnswer>(settings, 'halt-idle', {
      method: 'POST',
      body: JSON.stringify({ idle_seconds: 0, spare })
    });
    const names = (list: { notebook: string | null }[]) =>
      list
        .map(x => (x.notebook ? basename(x.notebook) : 'a kernel'))
        .join(', ');
    let message: string;
    if (answer.error) {
      message = `Halting idle kernels failed: ${answer.error}`;
    } else if (answer.halted.length) {
      message = `Halted ${answer.halted.length} idle kernel(s): ${names(answer.halted)}.`;
    } else {
      message = 'No idle kernel to halt.';
    }
    const busy = answer.spared.filter(s => s.reason === 'busy running code');
    if (busy.length) {
      message += ` Left running (busy): ${names(busy)}.`;
    }
    Notification.update({
      id,
      message,
      type: answer.ok && !answer.error ? 'success' : 'warning',
      autoClose: 8000
    });
  } catch (err) {
    Notification.update({
      id,
      message: `Halting idle kernels failed: ${(err as Error).message}`,
      type: 'error',
      autoClose: 8000
    });
  }
}

async function showDetails(
  settings: ServerConnection.ISettings,
  death: IDeath
): Promise<void> {
  const node = document.createElement('div');
  const link = document.createElement('a');
  link.href = death.url;
  link.target = '_blank';
  link.rel = 'noopener';
  link.className = 'kernel-wizard-details-link';
  link.textContent = `What to do: ${death.url}`;
  const pre = document.createElement('pre');
  pre.className = 'kernel-wizard-details';
  pre.textContent =
    `${death.summary}.` +
    (death.detail ? `\nHow it is known: ${death.detail}.` : '') +
    '\n\nRunning python -m wizard -v…';
  node.append(link, pre);
  const body = new Widget({ node });
  const dialog = showDialog({
    title: 'Why the kernel died',
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
  try {
    const report = await requestAPI<IReport>(settings, 'report');
    pre.textContent = `${death.summary}.\n\n${report.text}`;
  } catch (err) {
    pre.textContent = `${death.summary}.\n\nThe wizard could not run: ${(err as Error).message}`;
  }
  await dialog;
}

function announce(
  settings: ServerConnection.ISettings,
  tracker: INotebookTracker | null,
  death: IDeath
): void {
  const spare = death.kernel_id ? [death.kernel_id] : [];
  Notification.emit(death.summary + '.', 'error', {
    autoClose: false,
    actions: [
      {
        label: 'What to do',
        caption: death.url,
        displayType: 'link',
        callback: (event: MouseEvent) => {
          event.preventDefault(); // keep the notification
          window.open(death.url, '_blank', 'noopener');
        }
      },
      {
        label: 'Halt idle kernels',
        caption: 'Shut down every idle kernel; a busy one is never halted',
        callback: (event: MouseEvent) => {
          event.preventDefault();
          void haltIdle(settings, spare);
        }
      },
      {
        label: 'Details',
        caption: 'The evidence, as python -m wizard -v shows it',
        displayType: 'accent',
        callback: (event: MouseEvent) => {
          event.preventDefault();
          void showDetails(settings, death);
        }
      }
    ]
  });
}

/**
 * Names the cause when a notebook's kernel dies.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'kernel-wizard:plugin',
  description:
    'Names the cause when a kernel dies, with what to do about it (needs wizard.server_ext).',
  autoStart: true,
  optional: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker | null) => {
    if (!PageConfig.getOption(PAGE_CONFIG_KEY)) {
      return; // no server extension: nothing to ask
    }
    const settings = app.serviceManager.serverSettings;
    const seen = new Set<string>();
    let since: number | null = null;
    let busy = false;

    const poll = async (): Promise<void> => {
      if (busy || document.hidden || openNotebooks(tracker) === 0) {
        return;
      }
      busy = true;
      try {
        const query = since === null ? '' : `?since=${since - OVERLAP_S}`;
        const answer = await requestAPI<IDeaths>(settings, `deaths${query}`);
        for (const death of answer.deaths) {
          const key = `${death.kernel_id}:${death.time}`;
          if (seen.has(key)) {
            continue;
          }
          seen.add(key);
          if (since === null || !death.notify) {
            continue; // before this page was open, or asked for
          }
          if (tracker && !panelOf(tracker, death.kernel_id)) {
            continue; // not a notebook open here
          }
          announce(settings, tracker, death);
        }
        since = answer.now;
      } catch {
        // The server is away or restarting: ask again at the next poll.
      } finally {
        busy = false;
      }
    };
    void poll();
    window.setInterval(() => void poll(), POLL_MS);
  }
};

export default plugin;
