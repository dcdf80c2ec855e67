// The page's words in English and in Simplified Chinese (as plant engineers in China write
// them), and the formats of numbers, durations and alarm details in each.
import { page } from "./store.js";

const TEXT = {
  en: {
    title: "Edge agent", agent: "Agent", updated: "Updated", language: "Language",
    unreachable: "The agent does not answer; values shown may be old.",
    machines: "Machines", alarms: "Alarms", devices: "Devices", delivery: "Delivery",
    none: "none configured", loading: "loading…", not_available: "Not available from this agent.",
    // states and qualities
    running: "running", idle: "idle", down: "down", planned: "planned stop", unknown: "no data",
    up: "online", offline: "link down", never: "not yet polled",
    good: "good", bad: "bad", uncertain: "uncertain",
    yes: "yes", no: "no",
    since: "since",
    // login
    login: "Log in", logout: "Log out", user_name: "User name", password: "Password",
    login_needed: "Log in to see this agent and act on its alarms.",
    login_to_act: "Log in to act on alarms and stops.",
    login_wrong: "Wrong user name or password.", login_slow: "Too many failed logins: wait a minute.",
    viewer: "viewer", operator: "operator", engineer: "engineer",
    // machine card and OEE
    oee: "OEE", availability: "Availability", performance: "Performance", quality: "Quality",
    shift: "Shift", this_hour: "This hour", parts: "parts", good_parts: "good", rejects: "rejects",
    down_time: "down", no_oee: "OEE appears within a minute",
    alarm_badge: "{n} active alarms", alarm_badge_one: "1 active alarm",
    no_data_agent: "No data for {d} of {w}: the agent was not running (started {at}).",
    no_data_link: "No data for {d} of {w}: no valid values from the PLC (link down or bad quality).",
    of_shift: "this shift", of_hour: "this hour",
    oee_with_data: "OEE over the time with data", show_history: "Show history",
    // history
    history_of: "History: {m}",
    timeline: "Today's states", timeline_hint: "Hover or tap a stretch for its times and reason.",
    trend_hint: "Hover or tap a bar for its figures.", micro_stops: "{n} micro-stops",
    pareto_hint: "Hover or tap a bar for its share.",
    trend_shift: "OEE per shift, last 14 days", trend_hour: "OEE per hour, yesterday and today",
    no_windows: "No closed windows in this range yet.",
    nodata_share: "no data", simulated: "simulated (demo data)",
    simulated_count: "{n} of these windows are simulated (demo data).",
    pareto: "Downtime by reason", pareto_day: "Day", pareto_week: "Week (7 days to this date)",
    pareto_date: "Date", pareto_range: "Range", group_category: "Group by category",
    no_losses: "No downtime in this range.", unclassified: "Unclassified",
    cumulative: "cumulative",
    category_breakdown: "Breakdown", category_setup: "Setup and adjustment",
    category_material: "Material", category_operator: "Operator", category_planned: "Planned",
    category_quality: "Quality", category_other: "Other",
    stops: "Stops without a reason", stops_none: "Every stop in this range has a reason.",
    stops_more: "{n} more, older ones not shown.",
    stop_start: "Start", stop_duration: "Duration", stop_state: "Stop", stop_reason: "Reason",
    stop_note: "Note", pick_reason: "choose a reason…", save: "Save", saved: "Saved.",
    stop_code: "code {c}",
    rejects_entry: "Enter rejects", reject_count: "Count", reject_reason: "Reason",
    reject_saved: "Rejects saved.",
    rejects_exceed_good: "Not saved: this shift or hour has only {n} good parts so far.",
    reports: "Shift report", report_date: "Date", report_shift: "Shift",
    report_csv: "Download CSV", report_xlsx: "Download XLSX",
    report_no_calendar: "This machine has no shift calendar: no shift report.",
    // alarms
    alarm: "Alarm", machine: "Machine", state: "State", priority: "Priority",
    activated: "Activated", value: "Value", detail: "Detail", actions: "Actions",
    no_alarms: "no alarms configured",
    normal: "normal", unack_active: "active, unacknowledged", ack_active: "active, acknowledged",
    unack_rtn: "returned, unacknowledged", shelved: "shelved", suppressed: "suppressed",
    out_of_service: "out of service",
    low: "low", medium: "medium", high: "high", urgent: "urgent",
    ack: "Acknowledge", shelve: "Shelve…", unshelve: "Unshelve",
    remove: "Out of service…", restore: "Back in service",
    shelve_title: "Shelve {a}", remove_title: "Take {a} out of service",
    duration: "For", reason: "Reason", confirm: "Confirm", cancel: "Cancel",
    until: "until {t}",
    refused_action: "Not done",
    // devices and delivery
    tag: "Tag", unit: "Unit", last_ok: "last answer", signal_quality: "Quality",
    sink: "Destination", connected: "Connected", pending: "Waiting in buffer",
    oldest: "Oldest waits", refused: "Refused (kept aside)", error: "Last error",
    send_failed: "cannot deliver", id_conflict: "ID in use elsewhere", buffer: "Local buffer", records: "records",
    dropped: "{n} records dropped by the buffer limits", full: "buffer full: polling paused",
    // units
    min: "{v} min", hour: "{v} h", sec: "{v} s", pct: "{v} %",
    h_15m: "15 min", h_1h: "1 hour", h_4h: "4 hours", h_8h: "8 hours", h_24h: "24 hours",
    h_3d: "3 days", h_7d: "7 days",
    // reasons the agent itself names
    r_fault: "fault", r_fault_code: "fault {c}", r_planned_stop: "planned stop",
    r_planned_downtime: "planned downtime",
    // refusals
    err_400: "the input was not accepted", err_401: "log in first",
    err_403: "your role may not do this", err_404: "not found",
    err_409: "someone else changed it first", err_other: "the agent refused it ({s})",
    err_network: "the agent does not answer",
  },
  "zh-CN": {
    title: "边缘网关", agent: "网关", updated: "更新于", language: "语言",
    unreachable: "网关无响应，显示的数据可能已过时。",
    machines: "设备", alarms: "报警", devices: "数据采集", delivery: "数据上送",
    none: "未配置", loading: "加载中…", not_available: "本网关不提供此数据。",
    running: "运行", idle: "待机", down: "故障停机", planned: "计划停机", unknown: "无数据",
    up: "在线", offline: "通讯中断", never: "尚未采集",
    good: "良好", bad: "无效", uncertain: "不确定",
    yes: "是", no: "否",
    since: "开始于",
    login: "登录", logout: "退出登录", user_name: "用户名", password: "密码",
    login_needed: "请登录后查看本网关的数据并处理报警。",
    login_to_act: "登录后可处理报警和停机原因。",
    login_wrong: "用户名或密码错误。", login_slow: "登录失败次数过多，请一分钟后再试。",
    viewer: "只读", operator: "操作员", engineer: "工程师",
    oee: "OEE", availability: "时间开动率", performance: "性能开动率", quality: "良品率",
    shift: "班次", this_hour: "本小时", parts: "产量", good_parts: "良品", rejects: "不良品",
    down_time: "停机", no_oee: "一分钟内显示 OEE",
    alarm_badge: "{n} 条报警", alarm_badge_one: "1 条报警",
    no_data_agent: "{w}有 {d}无数据：网关未运行（{at} 启动）。",
    no_data_link: "{w}有 {d}无数据：PLC 通讯中断或数据无效。",
    of_shift: "本班", of_hour: "本小时",
    oee_with_data: "有数据时段的 OEE", show_history: "查看历史",
    history_of: "历史数据：{m}",
    timeline: "今日状态", timeline_hint: "鼠标悬停或点按色段可查看时间和原因。",
    trend_hint: "鼠标悬停或点按柱条可查看各项指标。", micro_stops: "短停 {n} 次",
    pareto_hint: "鼠标悬停或点按柱条可查看所占比例。",
    trend_shift: "近 14 天各班次 OEE", trend_hour: "昨天和今天每小时 OEE",
    no_windows: "此时间范围内尚无已结束的统计周期。",
    nodata_share: "无数据", simulated: "模拟数据（演示）",
    simulated_count: "其中 {n} 个周期为模拟数据（演示）。",
    pareto: "停机原因排列图", pareto_day: "按天", pareto_week: "按周（截至该日的 7 天）",
    pareto_date: "日期", pareto_range: "范围", group_category: "按类别汇总",
    no_losses: "此时间范围内没有停机。", unclassified: "待分类",
    cumulative: "累计",
    category_breakdown: "设备故障", category_setup: "换模调整",
    category_material: "物料", category_operator: "人员", category_planned: "计划",
    category_quality: "质量", category_other: "其他",
    stops: "未填写原因的停机", stops_none: "此时间范围内的停机均已填写原因。",
    stops_more: "另有 {n} 条较早的停机未显示。",
    stop_start: "开始", stop_duration: "时长", stop_state: "停机类型", stop_reason: "停机原因",
    stop_note: "备注", pick_reason: "选择原因…", save: "保存", saved: "已保存。",
    stop_code: "代码 {c}",
    rejects_entry: "录入不良品", reject_count: "数量", reject_reason: "原因",
    reject_saved: "不良品已录入。",
    rejects_exceed_good: "未录入：本班次或本小时目前只有 {n} 件良品。",
    reports: "班次报表", report_date: "日期", report_shift: "班次",
    report_csv: "下载 CSV", report_xlsx: "下载 XLSX",
    report_no_calendar: "此设备未配置班次日历，没有班次报表。",
    alarm: "报警", machine: "设备", state: "状态", priority: "优先级",
    activated: "触发时间", value: "当前值", detail: "详情", actions: "操作",
    no_alarms: "未配置报警",
    normal: "正常", unack_active: "报警中，未确认", ack_active: "报警中，已确认",
    unack_rtn: "已恢复，未确认", shelved: "已搁置", suppressed: "已抑制",
    out_of_service: "已停用",
    low: "低", medium: "中", high: "高", urgent: "紧急",
    ack: "确认", shelve: "搁置…", unshelve: "取消搁置",
    remove: "停用…", restore: "恢复启用",
    shelve_title: "搁置：{a}", remove_title: "停用：{a}",
    duration: "时长", reason: "原因", confirm: "确定", cancel: "取消",
    until: "至 {t}",
    refused_action: "未执行",
    tag: "点位", unit: "单位", last_ok: "最近应答", signal_quality: "数据质量",
    sink: "目标", connected: "已连接", pending: "缓存待发", oldest: "最早待发",
    refused: "被拒收（已隔离）", error: "最近错误",
    send_failed: "发送失败", id_conflict: "ID冲突", buffer: "本地缓存", records: "条记录",
    dropped: "{n} 条记录因缓存上限被丢弃", full: "缓存已满：采集已暂停",
    min: "{v} 分钟", hour: "{v} 小时", sec: "{v} 秒", pct: "{v}%",
    h_15m: "15 分钟", h_1h: "1 小时", h_4h: "4 小时", h_8h: "8 小时", h_24h: "24 小时",
    h_3d: "3 天", h_7d: "7 天",
    r_fault: "故障", r_fault_code: "故障 {c}", r_planned_stop: "计划停机",
    r_planned_downtime: "计划停机",
    err_400: "输入有误", err_401: "请先登录",
    err_403: "当前角色无此权限", err_404: "未找到",
    err_409: "已被他人修改", err_other: "网关拒绝执行（{s}）",
    err_network: "网关无响应",
  },
};

// Alarm details by key, in Chinese; English uses the agent's own `detail` text.
const DETAIL_ZH = {
  limit: (a) => `${LEVEL_ZH[a.level] || "限值"} ${num(a.limit)}`,
  zone: (a) => `振动区域 ${a.zone}（C 区自 ${num(a.c_from)}，D 区自 ${num(a.d_from)} mm/s）`,
  learning: () => "正在学习基线",
  ewma: (a) => `指数加权移动平均 ${num(a.z)}，控制限 ${num(a.low)} ～ ${num(a.high)}`,
  cusum: (a) => `累积和 上 ${num(a.upper)} ／ 下 ${num(a.lower)}，判定限 ${num(a.h)}`,
  rate: (a) => `变化率 ${num(a.slope)}/秒，限值 ${num(a.limit)}/秒`,
  trend: (a) => `约 ${num(a.hours, 1)} 小时后达到 ${num(a.limit)}`,
  run_hours: (a) => `已运行 ${num(a.hours, 1)} 小时，保养周期 ${num(a.interval)} 小时`,
  cycles: (a) => `已动作 ${num(a.cycles)} 次，保养周期 ${num(a.interval)} 次`,
  certificate_expiry: (a) => `证书 ${a.what} 将于 ${a.date} 到期，请更新或更换`,
  certificate_renewed: () => "证书已更新",
  buffer_corrupt: (a) => `缓存文件无法读取，已移至 ${a.aside}，并新建缓存文件`,
};
const LEVEL_ZH = { high_high: "超高高限", high: "超高限", low: "低于低限", low_low: "低于低低限" };

export const languages = Object.keys(TEXT);

export function t(key, args) {
  const text = (TEXT[page.lang] || TEXT.en)[key] ?? TEXT.en[key] ?? key;
  return args ? text.replace(/\{(\w+)\}/g, (_, k) => String(args[k] ?? "")) : text;
}

export function num(value, digits) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value !== "number") return String(value);
  const places = digits ?? (Number.isInteger(value) ? 0 : Math.abs(value) >= 100 ? 1 : 3);
  return value.toLocaleString(page.lang || "en", {
    maximumFractionDigits: places, minimumFractionDigits: digits ?? 0, useGrouping: false,
  });
}

export const pct = (ratio) =>
  (ratio === null || ratio === undefined ? "—" : t("pct", { v: num(100 * ratio, 1) }));

// Seconds as people read a stop: minutes below an hour, hours with one decimal above.
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return t("sec", { v: num(Math.round(seconds), 0) });
  if (seconds < 3600) return t("min", { v: num(Math.round(seconds / 60), 0) });
  return t("hour", { v: num(seconds / 3600, 1) });
}

// The agent names some reasons itself (in English): these are translated, configured ones not.
export function reasonText(reason) {
  if (reason === null || reason === undefined) return "";
  if (reason === "unclassified") return t("unclassified");
  if (reason === "fault") return t("r_fault");
  if (reason === "planned stop") return t("r_planned_stop");
  if (reason === "planned downtime") return t("r_planned_downtime");
  const code = /^fault (\S+)$/.exec(reason);
  return code ? t("r_fault_code", { c: code[1] }) : reason;
}

// Details that end with a limit in the tag's own unit: "high limit 80 °C", "超高限 80 °C".
const ENDS_WITH_LIMIT = new Set(["limit", "trend"]);

export function alarmDetail(alarm, unit = "") {
  const text = page.lang === "zh-CN" && alarm.detail_key in DETAIL_ZH
    ? DETAIL_ZH[alarm.detail_key](alarm.detail_args || {})
    : alarm.detail ?? "";
  return unit && text && ENDS_WITH_LIMIT.has(alarm.detail_key) ? `${text} ${unit}` : text;
}

export const categoryName = (category) => t(`category_${category || "other"}`);

// Why an action was refused, in the page's language (the agent's English text as a tooltip).
export function refusal(status) {
  const known = {
    0: "err_network", 400: "err_400", 401: "err_401", 403: "err_403", 404: "err_404", 409: "err_409",
  };
  return `${t("refused_action")}: ${t(known[status] ?? "err_other", { s: status })}`;
}
