using System.CommandLine;
using System.Text;
using Akka.Configuration;
using ActorNvme.Actors.Settings;

namespace ActorNvme.Host.Cli;

/// <summary>
/// <c>actornvme config</c>: the configuration the daemon would run with — every actornvme setting with its
/// effective value, the file's where it sets one, the default otherwise — checked as serve checks it;
/// <c>--sample</c> prints the library's reference.conf, every setting with its comment, to start a file from.
/// </summary>
internal static class ConfigCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo?>("--config", "-c") { Description = "HOCON configuration (default: akka.hocon in the working directory, when there)" };
        var sample = new Option<bool>("--sample") { Description = "Print every setting with its default and its comment (reference.conf)" };
        var command = new Command("config", "Print the effective actornvme configuration (file over defaults), checked as serve checks it")
        {
            config, sample,
        };
        command.SetAction(async (parse, _) =>
        {
            if (parse.GetValue(sample))
            {
                await Console.Out.WriteAsync(ReferenceText()).ConfigureAwait(false);
                return 0;
            }

            string? path = parse.GetValue(config)?.FullName;
            string name = path ?? Path.Combine(Environment.CurrentDirectory, "akka.hocon");
            try
            {
                var hocon = ServeCommand.LoadConfig(path);
                NvmeHostSettings.Create(hocon);
                await Console.Out.WriteAsync(Effective(hocon, hocon.IsEmpty ? null : name)).ConfigureAwait(false);
                return 0;
            }
            catch (InvalidNvmeSettingsException e)
            {
                await Console.Error.WriteLineAsync($"actornvme config: {name}: {e.Message} (rule {e.Rule})").ConfigureAwait(false);
                return 2;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ConfigurationException or FormatException)
            {
                await Console.Error.WriteLineAsync($"actornvme config: {name}: cannot read the configuration: {e.Message.ReplaceLineEndings(" ")}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }

    /// <summary>The actornvme section, one setting a line, each marked with where its value comes from.</summary>
    internal static string Effective(Config file, string? fileName)
    {
        var merged = file.WithFallback(NvmeHostSettings.ReferenceConfig).GetConfig("actornvme");
        var own = file.GetConfig("actornvme");
        var text = new StringBuilder();
        text.Append("# effective configuration: ").Append(fileName ?? "no configuration file").Append(" over the defaults (reference.conf)\n");
        text.Append("actornvme {\n");
        foreach (string key in NvmeHostSettings.KnownKeys.Order(StringComparer.Ordinal))
        {
            bool set = own is not null && !own.IsEmpty && own.HasPath(key);
            var raw = merged.GetValue(key);
            string shown = raw is not null && raw.IsArray()
                ? $"[{string.Join(", ", merged.GetStringList(key).Select(v => Quote(v ?? "null")))}]"
                : Quote(Shown(key, merged.GetString(key, string.Empty) ?? string.Empty));
            text.Append("  ").Append(key).Append(" = ").Append(shown).Append(set ? "   # from the file" : "   # default").Append('\n');
        }

        text.Append("}\n");
        return text.ToString();
    }

    /// <summary>An inline secret (dhchap-key, dhchap-ctrlr-key, psk) is shown as its kind only; a key file's path as is.</summary>
    private static string Shown(string key, string value) =>
        key is "dhchap-key" or "dhchap-ctrlr-key" or "psk" && value.Length > 0 && !Path.IsPathRooted(value.Trim())
            ? $"<secret {value.Trim().Split(':')[0]}>"
            : value;

    private static string Quote(string value) =>
        value.Length == 0 || value.Any(c => char.IsWhiteSpace(c) || c is ':' or '"' or '{' or '}' or '[' or ']' or ',' or '#' or '=')
            ? $"\"{value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)}\""
            : value;

    private static string ReferenceText()
    {
        using var stream = typeof(NvmeHostSettings).Assembly.GetManifestResourceStream("ActorNvme.Actors.reference.conf")
            ?? throw new InvalidOperationException("the embedded reference.conf is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
