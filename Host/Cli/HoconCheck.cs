using Akka.Configuration;

namespace ActorNvme.Host.Cli;

/// <summary>
/// What Akka's HOCON parser lets through and the daemon must not: an unclosed or stray brace or bracket
/// (the parser takes the file up to there and drops the rest without a word), and top-level sections the
/// daemon does not read (a misspelt "actornvme" would leave every setting at its default).
/// </summary>
internal static class HoconCheck
{
    /// <summary>The top-level sections of the daemon's configuration file.</summary>
    public static readonly IReadOnlyList<string> Sections = ["akka", "actornvme"];

    /// <summary>Throws <see cref="ConfigurationException"/> naming the line of the first unbalanced brace or bracket.</summary>
    public static void Balanced(string text)
    {
        var open = new Stack<(char Bracket, int Line)>();
        int line = 1;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            switch (c)
            {
                case '\n':
                    line++;
                    break;
                case '#':
                    i = SkipToEndOfLine(text, i);
                    break;
                case '/' when i + 1 < text.Length && text[i + 1] == '/':
                    i = SkipToEndOfLine(text, i);
                    break;
                case '"' when string.CompareOrdinal(text, i, "\"\"\"", 0, 3) == 0:
                    int close = text.IndexOf("\"\"\"", i + 3, StringComparison.Ordinal);
                    if (close < 0)
                    {
                        throw new ConfigurationException($"line {line}: a \"\"\" string is never closed");
                    }

                    line += text.AsSpan(i, close - i).Count('\n');
                    i = close + 2;
                    break;
                case '"':
                    int start = line;
                    for (i++; i < text.Length && text[i] != '"'; i++)
                    {
                        if (text[i] == '\\')
                        {
                            i++;
                        }
                        else if (text[i] == '\n')
                        {
                            throw new ConfigurationException($"line {start}: a quoted string is not closed on its line");
                        }
                    }

                    if (i >= text.Length)
                    {
                        throw new ConfigurationException($"line {start}: a quoted string is never closed");
                    }

                    break;
                case '{' or '[':
                    open.Push((c, line));
                    break;
                case '}' or ']':
                    char expected = c == '}' ? '{' : '[';
                    if (open.Count == 0)
                    {
                        throw new ConfigurationException($"line {line}: '{c}' closes nothing");
                    }

                    var (bracket, openedAt) = open.Pop();
                    if (bracket != expected)
                    {
                        throw new ConfigurationException($"line {line}: '{c}' closes the '{bracket}' of line {openedAt}");
                    }

                    break;
            }
        }

        if (open.Count > 0)
        {
            var (bracket, openedAt) = open.Peek();
            throw new ConfigurationException($"line {openedAt}: '{bracket}' is never closed");
        }
    }

    /// <summary>Throws <see cref="ConfigurationException"/> for a top-level key other than <see cref="Sections"/>.</summary>
    public static void KnownSections(Config config)
    {
        if (config.IsEmpty || config.Root is not { } root || !root.IsObject())
        {
            return;
        }

        foreach (string key in root.GetObject().Items.Keys)
        {
            if (!Sections.Contains(key, StringComparer.Ordinal))
            {
                throw new ConfigurationException($"'{key}' is not a section of this configuration (only {string.Join(" and ", Sections)})");
            }
        }
    }

    private static int SkipToEndOfLine(string text, int i)
    {
        int end = text.IndexOf('\n', i);
        return end < 0 ? text.Length : end - 1;
    }
}
