package parse

// TelegrafPatterns is the parser baseline of the benchmarks (BenchmarkParse here and
// `mxtrail bench`): one default-pattern grok expression per dialect, unanchored, tried in
// sequence until one matches, which is what Telegraf's grok parser does. The parser itself
// never uses it.
var TelegrafPatterns = []string{
	`%{SYSLOGTIMESTAMP:ts} %{SYSLOGHOST:host} %{PROG:prog}(?:\[%{POSINT:pid}\])?: %{WORD:code} from: %{NOTSPACE:sender} to: %{NOTSPACE:rcpt} origin_ip: %{IP:ip} origin_rdns: %{NOTSPACE:rdns} auth: %{NOTSPACE:auth} encryption: %{NOTSPACE:enc} reason: %{NOTSPACE:reason}`,
	`%{SYSLOGTIMESTAMP:ts} %{SYSLOGHOST:host} smtpf\[%{POSINT:pid}\]: %{NOTSPACE:sid} %{GREEDYDATA:msg}`,
	`%{SYSLOGTIMESTAMP:ts} %{SYSLOGHOST:host} %{PROG:prog}(?:\[%{POSINT:pid}\])?: %{NUMBER:qts} %{GREEDYDATA:msg}`,
	`%{TIMESTAMP_ISO8601:ts}, %{WORD:kind}, %{GREEDYDATA:rest}`,
	`%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:sev} %{NOTSPACE:facility} %{WORD:name} %{INT:id} %{NOTSPACE:proc}: %{GREEDYDATA:msg}`,
	`%{DATESTAMP:ts}\t%{NOTSPACE:dir}\t%{DATA:msgid}\t%{INT:sock}\t%{IP:ip}\t%{WORD:cmd}\t%{DATA:arg}\t%{DATA:reply}\t%{GREEDYDATA:rest}`,
	`%{DATESTAMP:ts} %{DATA:prefix}%{NOTSPACE:code}: %{GREEDYDATA:msg}`,
	`%{NOTSPACE:date} %{NOTSPACE:time} %{NOTSPACE:proc}\(%{BASE16NUM:conn}\) %{GREEDYDATA:msg}`,
	`%{SYSLOGTIMESTAMP:ts} %{SYSLOGHOST:host} %{PROG:prog}(?:\[%{POSINT:pid}\])?: %{GREEDYDATA:msg}`,
}
