import { useRef, useState, type KeyboardEvent, type ReactNode } from 'react';

export interface TabDefinition {
  id: string;
  label: string;
  /** Rendered once the tab was first selected, then kept (hidden) so its state survives switching. */
  render(active: boolean): ReactNode;
}

interface TabsProps {
  label: string;
  tabs: TabDefinition[];
  selected: string;
  onSelect(id: string): void;
}

/** WAI-ARIA tabs: one Tab stop, arrow keys / Home / End move between tabs. */
export function Tabs({ label, tabs, selected, onSelect }: TabsProps) {
  const [visited, setVisited] = useState<ReadonlySet<string>>(() => new Set([selected]));
  const buttons = useRef(new Map<string, HTMLButtonElement>());
  if (!visited.has(selected)) setVisited(new Set([...visited, selected]));

  function select(id: string, focus: boolean) {
    onSelect(id);
    if (focus) buttons.current.get(id)?.focus();
  }

  function onKeyDown(event: KeyboardEvent, index: number) {
    const last = tabs.length - 1;
    const target = { ArrowRight: index === last ? 0 : index + 1, ArrowLeft: index === 0 ? last : index - 1, Home: 0, End: last }[event.key];
    if (target === undefined) return;
    event.preventDefault();
    select(tabs[target]!.id, true);
  }

  return (
    <div className="tabs">
      <div role="tablist" aria-label={label} className="tablist">
        {tabs.map((tab, index) => (
          <button
            key={tab.id}
            ref={(el) => {
              if (el) buttons.current.set(tab.id, el);
              else buttons.current.delete(tab.id);
            }}
            type="button"
            role="tab"
            id={`tab-${tab.id}`}
            aria-controls={`panel-${tab.id}`}
            aria-selected={tab.id === selected}
            tabIndex={tab.id === selected ? 0 : -1}
            className="tab"
            onClick={() => select(tab.id, false)}
            onKeyDown={(e) => onKeyDown(e, index)}
          >
            {tab.label}
          </button>
        ))}
      </div>
      {tabs.map((tab) =>
        visited.has(tab.id) ? (
          <div key={tab.id} role="tabpanel" id={`panel-${tab.id}`} aria-labelledby={`tab-${tab.id}`} hidden={tab.id !== selected} className="tabpanel">
            {tab.render(tab.id === selected)}
          </div>
        ) : null,
      )}
    </div>
  );
}
