//! The inbox in English and Chinese, per agent (`agents.locale`).
//!
//! Templates write the English text and call `tr.s("…")`; in Chinese the table below
//! gives the translation. A test reads every template and fails on a string the
//! table lacks, so a new button cannot ship half translated.

/// The interface language of one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr {
    zh: bool,
}

impl Tr {
    /// `zh` for Chinese; anything else is English.
    pub fn new(locale: &str) -> Self {
        Self { zh: locale == "zh" }
    }

    /// The `lang` attribute of the page.
    pub fn lang(&self) -> &'static str {
        if self.zh { "zh-CN" } else { "en" }
    }

    /// The text in this language (the English text itself when untranslated).
    pub fn s<'a>(&self, en: &'a str) -> &'a str {
        if !self.zh {
            return en;
        }
        match ZH.binary_search_by(|(k, _)| (*k).cmp(en)) {
            Ok(i) => ZH[i].1,
            Err(_) => en,
        }
    }
}

/// (English, Chinese), sorted by the English text (a test checks).
const ZH: &[(&str, &str)] = &[
    ("API tokens", "API 令牌"),
    ("Add", "添加"),
    ("Add or replace", "添加或替换"),
    ("Agent", "客服"),
    ("Agents", "客服"),
    ("All", "全部"),
    ("All conversations", "全部会话"),
    ("Answer", "回答"),
    ("Assign to me", "分配给我"),
    ("Attach a file", "附加文件"),
    ("Audit log", "审计日志"),
    ("Bot resolution rate", "机器人解决率"),
    ("CSAT by agent", "客服满意度"),
    ("CSAT by team", "团队满意度"),
    ("Canned responses", "快捷回复"),
    ("Channel", "渠道"),
    ("Channels", "渠道"),
    ("Confidence", "置信度"),
    ("Contact", "联系人"),
    ("Conversations by channel", "各渠道会话量"),
    ("Conversations by intent", "各意图会话量"),
    ("Conversations per day", "每日会话量"),
    ("Create", "创建"),
    ("Customer", "客户"),
    ("Delete", "删除"),
    ("Edit hours", "修改工作时间"),
    ("Escalate to a supervisor", "升级给主管"),
    ("Escalate to tier 2", "升级到二线"),
    ("Filter", "筛选"),
    ("First response", "首次响应"),
    ("From", "从"),
    ("Health", "状态"),
    ("Identities", "身份"),
    ("Intent", "意图"),
    (
        "Keyboard: j/k move, o opens, r replies, e resolves",
        "快捷键：j/k 移动，o 打开，r 回复，e 解决",
    ),
    ("Knowledge base", "知识库"),
    ("Labels", "标签"),
    ("Last error", "最近错误"),
    ("Last message", "最后消息"),
    ("Log out", "退出"),
    ("Mentions", "提及我的"),
    ("Merge into contact #", "合并到联系人 #"),
    ("Mine", "我的"),
    ("Name", "名称"),
    ("Nothing here.", "这里没有内容。"),
    ("Older", "更早"),
    ("Original mail", "原始邮件"),
    ("Pending", "待客户回复"),
    ("Priority", "优先级"),
    ("Private note", "内部备注"),
    ("Reason", "原因"),
    ("Reply to the customer", "回复客户"),
    ("Reports", "报表"),
    ("Resolution", "解决时长"),
    ("Resolve", "解决"),
    ("Revoke", "撤销"),
    ("SLA", "SLA"),
    ("SLA breaches", "SLA 超时"),
    ("Save", "保存"),
    ("Search messages and names", "搜索消息和姓名"),
    ("Send", "发送"),
    ("Shortcut", "快捷词"),
    ("Show", "显示"),
    ("Snooze", "稍后提醒"),
    ("Status", "状态"),
    ("Team", "团队"),
    ("Teams and hours", "团队与工作时间"),
    ("Telegram link", "Telegram 链接"),
    ("Text", "内容"),
    ("Title", "标题"),
    ("To", "到"),
    ("Transfer", "转接"),
    ("Try a message", "试一条消息"),
    ("Unassigned", "未分配"),
    ("Verified", "已验证"),
    ("any priority", "任意优先级"),
    ("hours", "小时"),
    ("left in the chat", "聊天中留下"),
    ("not verified", "未验证"),
    ("p50", "中位数"),
    ("p90", "90 分位"),
    ("team", "团队"),
    ("unreachable", "无法送达"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_has_no_repeats() {
        assert!(ZH.windows(2).all(|w| w[0].0 < w[1].0), "sort ZH by English");
    }

    #[test]
    fn every_string_a_template_asks_for_has_a_chinese_text() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split("tr.s(\"").skip(1) {
                let en = &piece[..piece.find('"').unwrap()];
                if ZH.binary_search_by(|(k, _)| (*k).cmp(en)).is_err() {
                    missing.push(format!("{}: {en}", path.display()));
                }
            }
        }
        assert!(missing.is_empty(), "untranslated: {missing:#?}");
    }

    #[test]
    fn english_is_the_text_itself_and_chinese_comes_from_the_table() {
        assert_eq!(Tr::new("en").s("Resolve"), "Resolve");
        assert_eq!(Tr::new("zh").s("Resolve"), "解决");
        assert_eq!(Tr::new("zh").lang(), "zh-CN");
    }
}
